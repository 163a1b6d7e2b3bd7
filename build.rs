//! Rebuilds when a migration is added or changed: `sqlx::migrate!` embeds the files at compile
//! time, and cargo only watches Rust sources by itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
