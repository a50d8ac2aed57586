// Run by the Rust kernel at start (binder/rust-kernel makes it evcxr's prelude.rs).
// A panic in a cell, such as an unanswered exercise's `todo!()`, prints its
// message and where it happened, as Rust always does, and nothing more: evcxr
// forces RUST_BACKTRACE=1 on the process that runs the cells, and the long
// backtrace it printed trailed into the next cell's output.
// For a backtrace, set QUANTLAB_BACKTRACE=1 before starting Jupyter, or run
// `unsafe { std::env::set_var("QUANTLAB_BACKTRACE", "1") };` in a cell: it is read when a
// panic happens.
{
    let quantlab_default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::env::var("QUANTLAB_BACKTRACE").is_ok_and(|v| !v.is_empty() && v != "0") {
            return quantlab_default_hook(info);
        }
        let message = info.payload_as_str().unwrap_or("Box<dyn Any>");
        let at = info.location().map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
        let thread = std::thread::current();
        eprintln!("thread '{}' panicked{at}:\n{message}", thread.name().unwrap_or("<unnamed>"));
        // The kernel forwards stderr from a pipe while the cell's end comes on
        // stdout: a moment's wait lets the message arrive with its own cell.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }));
}
