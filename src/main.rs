fn main() -> std::process::ExitCode {
    tokenkeeper::cli::run()
}
