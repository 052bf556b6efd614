// A graph network whose struct declares no layers: its block only applies activations.
nn::network! {
    pub struct NoLayers {}
    forward(x: [4]) -> y {
        let y = relu(x);
    }
}

fn main() {}
