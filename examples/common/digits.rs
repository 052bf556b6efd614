//! The UCI 8×8 handwritten digits (1797 images, 10 classes; the set scikit-learn ships as
//! `load_digits`, embedded in the `smartcore` crate), with the fixed stratified 80/20 split
//! both digits examples use, and their test report.

use nn::SMatrix;
use rand_core::SeedableRng;

/// The seed of the split (and of the examples' initialisation).
pub const SEED: u64 = 2024;

/// An image: 64 pixels in [0, 1], row by row (as a `[1, 8, 8]` input too).
pub type Image = SMatrix<f32, 64, 1>;

/// Images and their labels.
pub type Part = (Vec<Image>, Vec<usize>);

/// Images scaled to [0, 1] and their labels, split 80/20 in every class: (training, test).
pub fn load_split() -> (Part, Part) {
    let data = smartcore::dataset::digits::load_dataset();
    assert_eq!((data.num_samples, data.num_features), (1797, 64));
    let images: Vec<Image> = data
        .data
        .chunks(64)
        .map(|pixels| Image::from_iterator(pixels.iter().map(|p| p / 16.0)))
        .collect();
    let labels: Vec<usize> = data.target.iter().map(|&t| t as usize).collect();

    // Stratified: shuffle each class's indices with a fixed seed and keep 80% for training.
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(SEED);
    let (mut train, mut test) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for class in 0..10 {
        let mut indices: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        for i in (1..indices.len()).rev() {
            let j = (rand_core::Rng::next_u64(&mut rng) % (i as u64 + 1)) as usize;
            indices.swap(i, j);
        }
        let cut = (indices.len() as f64 * 0.8).round() as usize;
        for (k, &i) in indices.iter().enumerate() {
            let part = if k < cut { &mut train } else { &mut test };
            part.0.push(images[i]);
            part.1.push(labels[i]);
        }
    }
    (train, test)
}

/// Prints the confusion matrix of `predict` on the test part and returns the accuracy.
pub fn report(test: &Part, mut predict: impl FnMut(&Image) -> usize) -> f64 {
    let mut confusion = [[0usize; 10]; 10];
    for (x, &label) in test.0.iter().zip(&test.1) {
        confusion[label][predict(x)] += 1;
    }
    let correct: usize = (0..10).map(|c| confusion[c][c]).sum();
    println!("\nconfusion matrix (rows: true digit, columns: predicted)");
    println!(
        "      {}",
        (0..10).map(|c| format!("{c:>4}")).collect::<String>()
    );
    for (class, row) in confusion.iter().enumerate() {
        println!(
            "  {class:>2}  {}",
            row.iter().map(|n| format!("{n:>4}")).collect::<String>()
        );
    }
    let accuracy = correct as f64 / test.0.len() as f64;
    println!(
        "\ntest accuracy {:.2}% ({correct}/{})",
        100.0 * accuracy,
        test.0.len()
    );
    accuracy
}
