//! The contrast examples' command line: `--help` prints what the example shows and how to read
//! its output; any other argument is refused with a pointer to `--help`.

/// Prints `help` and exits 0 on `-h`/`--help`; exits 2 on any other argument; returns when
/// there is none.
pub fn help_or_run(name: &str, help: &str) {
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("-h" | "--help") => {
            print!("{help}");
            std::process::exit(0);
        }
        Some(other) => {
            eprintln!("{name}: unknown argument {other:?} (--help says what this example shows)");
            std::process::exit(2);
        }
    }
}
