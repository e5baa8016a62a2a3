fn main() -> std::process::ExitCode {
    usersvc_api::main()
}
