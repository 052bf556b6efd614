//! The views the generated `NetQ8::forward_in` takes of its workspace's two buffers: each
//! layer reads its input from the front of one and writes its output to the front of the
//! other.

/// The first `N` bytes of `buffer` as an array (a layer's input in a `NetQ8Workspace`
/// buffer). `N ≤ M` is checked at compile time, and `first_chunk`'s length check compares
/// two constants: it compiles away (no panic path in an optimized build).
#[inline(always)]
pub fn prefix<const N: usize, const M: usize>(buffer: &[i8; M]) -> &[i8; N] {
    const { assert!(N <= M, "a layer's values do not fit the workspace buffer") };
    match buffer.first_chunk::<N>() {
        Some(view) => view,
        None => unreachable!(),
    }
}

/// The first `N` bytes of `buffer` as a mutable array (a layer's output in a
/// `NetQ8Workspace` buffer); see [`prefix`].
#[inline(always)]
pub fn prefix_mut<const N: usize, const M: usize>(buffer: &mut [i8; M]) -> &mut [i8; N] {
    const { assert!(N <= M, "a layer's values do not fit the workspace buffer") };
    match buffer.first_chunk_mut::<N>() {
        Some(view) => view,
        None => unreachable!(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_the_front_of_the_buffer() {
        let mut buffer: [i8; 6] = [1, 2, 3, 4, 5, 6];
        assert_eq!(prefix::<4, 6>(&buffer), &[1, 2, 3, 4]);
        assert_eq!(prefix::<6, 6>(&buffer), &buffer.clone());
        prefix_mut::<2, 6>(&mut buffer).copy_from_slice(&[9, 8]);
        assert_eq!(buffer, [9, 8, 3, 4, 5, 6]);
        assert_eq!(prefix::<0, 6>(&buffer), &[0i8; 0]);
    }
}
