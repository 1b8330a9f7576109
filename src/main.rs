fn main() -> std::process::ExitCode {
    sockgen::cli::main()
}
