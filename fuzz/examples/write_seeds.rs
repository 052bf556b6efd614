//! Writes a valid file of each format into `seeds/<target>/valid`, the fuzzers' starting
//! points (committed; rerun after a format change: `cargo run --example write_seeds` here).

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, bytes) in nn_fuzz::seeds() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("valid"), bytes).unwrap();
        println!("wrote seeds/{target}/valid");
    }
}
