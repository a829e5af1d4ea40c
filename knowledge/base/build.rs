//! `sqlx::migrate!` embeds the migrations when `base` compiles: a new migration file must
//! recompile it, or the binary runs without it.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
