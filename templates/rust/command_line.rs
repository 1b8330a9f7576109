
/// What `-h` and `--help` print; its first line is the usage line.
const HELP: &str = {{ v.help_rust }};

/// The usage line, which a mistake on the command line is followed by.
fn usage_line() -> &'static str {
    HELP.lines().next().unwrap_or(HELP)
}

/// One option of the command line.
enum Arg {
    /// `-x VALUE` or `-xVALUE`.
    Short(char, String),
    /// `-h` or `--help`.
    Help,
    /// `--NAME` or `--NAME=VALUE`: one of the spec's options.
    Long(String, Option<String>),
}

/// The next option, read the way the C output reads its command line: `-x VALUE` or
/// `-xVALUE` for the letters of `with_value`, `-h` or `--help`, `--NAME[=VALUE]`; `--` ends the
/// options. None where the options end; Err carries the message for the user.
fn next_option(
    args: &mut std::iter::Peekable<impl Iterator<Item = String>>,
    with_value: &str,
) -> Result<Option<Arg>, String> {
    let Some(arg) = args.next_if(|a| a.len() > 1 && a.starts_with('-')) else {
        return Ok(None);
    };
    if arg == "--" {
        return Ok(None);
    }
    if arg == "-h" || arg == "--help" {
        return Ok(Some(Arg::Help));
    }
    if let Some(long) = arg.strip_prefix("--") {
        return Ok(Some(match long.split_once('=') {
            Some((name, value)) => Arg::Long(name.to_string(), Some(value.to_string())),
            None => Arg::Long(long.to_string(), None),
        }));
    }
    let letter = arg[1..].chars().next().unwrap_or('-');
    if !with_value.contains(letter) {
        return Err(format!("invalid option -- '{letter}'\n{}", usage_line()));
    }
    let rest = &arg[1 + letter.len_utf8()..];
    let value = if rest.is_empty() {
        args.next()
            .ok_or_else(|| format!("option requires an argument -- '{letter}'\n{}", usage_line()))?
    } else {
        rest.to_string()
    };
    Ok(Some(Arg::Short(letter, value)))
}

/// The arguments as strings; an argument that is not UTF-8 is refused with a message rather
/// than a panic (`std::env::args` would panic).
fn utf8_args() -> Result<Vec<String>, String> {
    std::env::args_os()
        .skip(1)
        .map(|arg| {
            arg.into_string()
                .map_err(|arg| format!("argument '{}' is not valid UTF-8", arg.to_string_lossy()))
        })
        .collect()
}

/// The value of `--NAME`: after `=`, or the next argument.
fn option_value(
    name: &str,
    inline: Option<String>,
    args: &mut impl Iterator<Item = String>,
) -> Result<String, String> {
    match inline {
        Some(value) => Ok(value),
        None => args.next().ok_or_else(|| format!("option '--{name}' needs a value")),
    }
}

/// Digits with an optional `-`, within `min..=max`; None for anything else (`+`, spaces, hex,
/// trailing text, overflow), as the C output reads an int option.
fn parse_integer(text: &str, min: i64, max: i64) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().filter(|n| (min..=max).contains(n))
}
