//! Located problems and their rendering: `file:line:col`, the source line, a caret, a hint.
//!
//! Every stage reports through [`Diagnostic`]; stages collect them instead of stopping at the
//! first, so a user fixes a spec in one round trip.

use codespan_reporting::diagnostic::{Diagnostic as Report, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, Chars, Config};

use crate::source::{SourceFile, Span};

/// An error stops the pipeline; a warning is printed and the output is still generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Where the problem is, when it comes from the spec text (a CLI flag has no span).
    pub span: Option<Span>,
    /// Short text printed under the caret.
    pub label: Option<String>,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: None,
            label: None,
            hint: None,
        }
    }

    /// Something valid that probably does not do what the author expects.
    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn with_span(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// 1-based line and column of the start of the span.
    pub fn line_col(&self, text: &str) -> Option<(usize, usize)> {
        let start = self.span.as_ref()?.start.min(text.len());
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        Some((line, column))
    }
}

/// All the problems found in one spec, rendered against its text by `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    pub source: SourceFile,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Renders like a compiler: header, `--> file:line:col`, source line, caret, `= help:`.
    pub fn render(&self) -> String {
        self.render_styled(false)
    }

    /// [`render`](Self::render), with ANSI colours when `color` is true (for a terminal).
    pub fn render_styled(&self, color: bool) -> String {
        let file = SimpleFile::new(self.source.name.as_str(), self.source.text.as_str());
        let config = Config {
            chars: Chars::ascii(),
            ..Config::default()
        };
        let mut out = String::new();
        for d in &self.items {
            let (mut report, word) = match d.severity {
                Severity::Error => (Report::error(), "error"),
                Severity::Warning => (Report::warning(), "warning"),
            };
            report = report.with_message(&d.message);
            if let Some((line, column)) = d
                .line_col(&self.source.text)
                .filter(|_| self.line_too_long(d))
            {
                // A hostile file can hold a line of megabytes: point at it, don't print it.
                out.push_str(&format!(
                    "{word}: {}\n  --> {}:{line}:{column}\n",
                    d.message, self.source.name
                ));
                if let Some(hint) = &d.hint {
                    out.push_str(&format!("  = help: {hint}\n"));
                }
                out.push('\n');
                continue;
            }
            if let Some(span) = &d.span {
                let span = clamp(span, self.source.text.len());
                let label = Label::primary((), span);
                report = report.with_labels(vec![match &d.label {
                    Some(text) => label.with_message(text),
                    None => label,
                }]);
            }
            if let Some(hint) = &d.hint {
                report = report.with_notes(vec![format!("help: {hint}")]);
            }
            let mut buffer = if color {
                termcolor::Buffer::ansi()
            } else {
                termcolor::Buffer::no_color()
            };
            match term::emit_to_write_style(&mut buffer, &config, &file, &report) {
                Ok(()) => out.push_str(&String::from_utf8_lossy(buffer.as_slice())),
                // Rendering only fails for spans outside the text; fall back to the plain message.
                Err(_) => out.push_str(&format!("{word}: {}\n", d.message)),
            }
        }
        let n = self.items.len();
        let warnings = self
            .items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count();
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        out.push_str(&if warnings == n {
            format!("{}: {n} warning{}\n", self.source.name, plural(n))
        } else {
            format!("{}: {n} problem{} found\n", self.source.name, plural(n))
        });
        out
    }
}

impl Diagnostics {
    /// Whether the source line under the diagnostic is too long to print usefully.
    fn line_too_long(&self, d: &Diagnostic) -> bool {
        const MAX_SHOWN: usize = 240;
        let Some(span) = &d.span else { return false };
        let text = &self.source.text;
        let at = span.start.min(text.len());
        let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        end - start > MAX_SHOWN
    }
}

fn clamp(span: &Span, len: usize) -> Span {
    let start = span.start.min(len);
    start..span.end.clamp(start, len)
}

impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Diagnostics {}

/// "did you mean `nodelay`?" for a misspelt word, when one candidate is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&word.to_ascii_lowercase(), c),
                c,
            )
        })
        .filter(|&(distance, c)| distance <= (c.len() / 3).max(1) + usize::from(c.len() > 6))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_only_when_close() {
        assert_eq!(
            did_you_mean("nodelya", ["nodelay", "reuseaddr"]),
            Some("nodelay")
        );
        assert_eq!(
            did_you_mean("recv_bufer", ["recv_buffer", "send_buffer"]),
            Some("recv_buffer")
        );
        assert_eq!(did_you_mean("colour", ["nodelay", "reuseaddr"]), None);
    }

    #[test]
    fn line_and_column_are_one_based() {
        let d = Diagnostic::error("x").with_span(8..9);
        assert_eq!(d.line_col("abc\ndef\nghi"), Some((3, 1)));
    }
}
