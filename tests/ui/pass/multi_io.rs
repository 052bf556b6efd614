use nn::prelude::*;

// Two inputs, two outputs; concat, an element-wise product, a layer shared by two branches,
// and an activation with a parameter.
nn::network! {
    struct TwoTower {
        embed_a: Dense<4, 6>,
        embed_b: Dense<6>,
        shared: Dense<6>,
        head: Dense<2>,
    }
    forward(a: [4], b: [3]) -> (y: [2], z) {
        let ea = shared(embed_a(a));
        let eb = shared(embed_b(b));
        let z = ea * eb;
        let y = head(leaky_relu(concat(ea, z), 0.2));
    }
}

fn main() {
    // `shared` is counted once.
    assert_eq!(
        TwoTower::<f32>::PARAM_COUNT,
        (4 * 6 + 6) + (3 * 6 + 6) + (6 * 6 + 6) + (12 * 2 + 2)
    );
    let mut net = TwoTower::<f64>::ZERO;
    net.shared.bias.fill(-2.0);
    net.head.weight.fill(1.0);
    let a = SMatrix::<f64, 4, 1>::zeros();
    let b = SMatrix::<f64, 3, 1>::zeros();
    let (y, z): (SMatrix<f64, 2, 1>, SMatrix<f64, 6, 1>) = net.forward(&a, &b);
    // ea = eb = -2, z = 4; leaky_relu(concat) = [-0.4; 6] ++ [4; 6]; y = 6·(-0.4) + 6·4.
    assert_eq!(z, SMatrix::<f64, 6, 1>::repeat(4.0));
    assert!(y.iter().all(|&v| (v - 21.6).abs() < 1e-12), "{y}");

    let report = nn::gradcheck::check_network(&mut net, &(a, b));
    assert!(report.max_rel_error < 1e-6, "{report:?}");
}
