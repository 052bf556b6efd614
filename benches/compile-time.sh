#!/usr/bin/env bash
# Compile cost of `network!` (BENCHMARKS.md, "Compile time"): builds a throw-away binary
# crate that depends on this repository's `nn`, once with no network (the baseline), once with
# a 20-layer MLP and once with LeNet-5, each using forward_train/backward at batch 32 so that
# the generated code is compiled, and prints for each
#   - the macro's expansion time (rustc's `macro_expand_crate` pass, from -Ztime-passes),
#   - the wall time of `cargo build` (debug) and `cargo build --release` of the crate alone
#     (its dependencies are built beforehand), minus nothing: compare with the baseline row.
# Usage: bash benches/compile-time.sh   (takes a few minutes; never run by CI)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<TOML
[package]
name = "compile-time"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
nn = { path = "$root" }

[workspace]
TOML

mlp20() {
  echo 'nn::network! { pub struct Net { input: [64],'
  for i in $(seq 1 20); do echo "  l$i: Dense<64>, Relu,"; done
  echo '} }'
  echo 'const IN: usize = 64; const OUT: usize = 64;'
}
lenet() {
  cat <<'RS'
nn::network! { pub struct Net {
  input: [1, 28, 28],
  conv1: Conv2d<6, 5, padding = 2>, Relu, pool1: MaxPool2d<2>,
  conv2: Conv2d<16, 5>, Relu, pool2: MaxPool2d<2>,
  Flatten, fc1: Dense<120>, Relu, fc2: Dense<84>, Relu, fc3: Dense<10>,
} }
const IN: usize = 784; const OUT: usize = 10;
RS
}
use_net() {
  cat <<'RS'
fn main() {
    use nn::prelude::*;
    let mut net = Net::<f32>::new_boxed();
    let mut tape = <Net<f32> as Network<f32>>::Tape::<32>::new_boxed();
    let mut grads = <Net<f32> as Network<f32>>::Grads::new_boxed();
    let x = SMatrix::<f32, IN, 32>::new_boxed();
    let y = net.forward_train(&*x, &mut *tape);
    let dy = SMatrix::<f32, OUT, 32>::from_element(0.1);
    let dx = net.backward(&mut *tape, &dy, &mut *grads);
    println!("{} {}", y.sum(), dx.sum());
}
RS
}

export CARGO_TARGET_DIR="$dir/target"
cd "$dir"
printf '| crate | macro expansion | cargo build (debug) | cargo build --release |\n|---|---|---|---|\n'
for variant in baseline mlp20 lenet; do
  case $variant in
    baseline) printf 'fn main() { println!("{}", nn::SMatrix::<f32, 2, 2>::identity().sum()); }\n' > src/main.rs ;;
    mlp20) { mlp20; use_net; } > src/main.rs ;;
    lenet) { lenet; use_net; } > src/main.rs ;;
  esac
  # Dependencies first (not timed).
  cargo build --quiet 2>/dev/null; cargo build --quiet --release 2>/dev/null
  times=()
  for profile in dev release; do
    touch src/main.rs
    start=$(date +%s.%N)
    cargo build --quiet --profile "$profile"
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  # In its own target directory: RUSTC_BOOTSTRAP changes every fingerprint.
  expand=$(touch src/main.rs && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$dir/target-passes" \
    cargo rustc --quiet -- -Ztime-passes 2>&1 \
    | awk '/macro_expand_crate/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+;?$/) { sub(";", "", $i); print $i; exit } }')
  printf '| %s | %s s | %.2f s | %.2f s |\n' "$variant" "${expand:-?}" "${times[0]}" "${times[1]}"
done
