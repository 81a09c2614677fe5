// The allocator the service runs on; the sweep bench sets the same one, so
// that the memory it reports is the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tokenkeeper::cli::run()
}
