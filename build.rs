//! Rebuilds bantin when the embedded sample site of `bantin demo` changes (the
//! `include_dir!` macro cannot tell cargo so on stable Rust).

fn main() {
    println!("cargo:rerun-if-changed=demo");
}
