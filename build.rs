// `sqlx::migrate!` embeds src/store/migrations/{sqlite,postgres} at compile time; a new
// migration file must rebuild the crate (what `sqlx migrate build-script` generates).
fn main() {
    println!("cargo:rerun-if-changed=src/store/migrations");
}
