//! The built-in vocabulary of the DSL besides layers: activations, initialisation schemes,
//! and the graph functions `concat` and `flatten`.

/// An activation the DSL knows.
pub struct ActivationInfo {
    /// Its name in a `forward` block: `leaky_relu(x, 0.2)`.
    pub func: &'static str,
    /// Its names in a sequential network: `LeakyRelu(0.2)`.
    pub sequential: &'static [&'static str],
    /// The type in `nn::activations`.
    pub ty: &'static str,
    /// Numeric parameters: field name in the type, and default.
    pub params: &'static [(&'static str, f64)],
    /// Softmax-like: defined over a vector, not element by element.
    pub needs_vector: bool,
    /// The `nn::init::Init` variant for a layer whose output this activation takes.
    pub default_init: &'static str,
}

const fn act(
    func: &'static str,
    sequential: &'static [&'static str],
    ty: &'static str,
) -> ActivationInfo {
    ActivationInfo {
        func,
        sequential,
        ty,
        params: &[],
        needs_vector: false,
        default_init: DEFAULT_INIT,
    }
}

/// He (Kaiming) initialisation: for layers followed by the ReLU family.
const fn he(info: ActivationInfo) -> ActivationInfo {
    ActivationInfo {
        default_init: "HeUniform",
        ..info
    }
}

/// The `nn::init::Init` variant of a layer followed by no activation, or by one outside the
/// ReLU family.
pub const DEFAULT_INIT: &str = "GlorotUniform";

/// `#[init(..)]` names and their `nn::init::Init` variants.
pub const INITS: &[(&str, &str)] = &[
    ("glorot_uniform", "GlorotUniform"),
    ("glorot_normal", "GlorotNormal"),
    ("xavier_uniform", "GlorotUniform"),
    ("xavier_normal", "GlorotNormal"),
    ("he_uniform", "HeUniform"),
    ("he_normal", "HeNormal"),
    ("kaiming_uniform", "HeUniform"),
    ("kaiming_normal", "HeNormal"),
    ("lecun_uniform", "LecunUniform"),
    ("zeros", "Zeros"),
];

/// The `Init` variant called `name` in `#[init(name)]`.
pub fn init_by_name(name: &str) -> Option<&'static str> {
    INITS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, variant)| *variant)
}

/// Every activation, in the order the docs list them.
pub const ACTIVATIONS: &[ActivationInfo] = &[
    act("identity", &["Identity"], "Identity"),
    act("sigmoid", &["Sigmoid"], "Sigmoid"),
    act("tanh", &["Tanh"], "Tanh"),
    act("sigmoid_fast", &["SigmoidFast"], "SigmoidFast"),
    act("tanh_fast", &["TanhFast"], "TanhFast"),
    he(act("relu", &["Relu", "ReLU"], "Relu")),
    he(ActivationInfo {
        params: &[("alpha", 0.01)],
        ..act("leaky_relu", &["LeakyRelu", "LeakyReLU"], "LeakyRelu")
    }),
    he(ActivationInfo {
        params: &[("alpha", 1.0)],
        ..act("elu", &["Elu", "ELU"], "Elu")
    }),
    act("softplus", &["Softplus"], "Softplus"),
    he(act("gelu", &["Gelu", "GELU"], "Gelu")),
    he(act("silu", &["Silu", "SiLU"], "Silu")),
    he(act("swish", &["Swish"], "Silu")),
    act("sign", &["Sign"], "Sign"),
    act("heaviside", &["Heaviside"], "Heaviside"),
    act("sign_ste", &["SignSte"], "SignSte"),
    act("heaviside_ste", &["HeavisideSte"], "HeavisideSte"),
    ActivationInfo {
        needs_vector: true,
        ..act("softmax", &["Softmax"], "Softmax")
    },
    ActivationInfo {
        needs_vector: true,
        ..act("log_softmax", &["LogSoftmax"], "LogSoftmax")
    },
];

/// The function that joins vectors: `concat(a, b, ...)`.
pub const CONCAT: &str = "concat";

/// The function that views any node as a vector: `flatten(x)`.
pub const FLATTEN: &str = "flatten";

/// The activation called `name` in a `forward` block.
pub fn activation_by_func(name: &str) -> Option<&'static ActivationInfo> {
    ACTIVATIONS.iter().find(|a| a.func == name)
}

/// The activation called `name` in a sequential network.
pub fn activation_by_sequential_name(name: &str) -> Option<&'static ActivationInfo> {
    ACTIVATIONS.iter().find(|a| a.sequential.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::closest;

    #[test]
    fn suggests_the_closest_name() {
        let funcs = ACTIVATIONS.iter().map(|a| a.func);
        assert_eq!(closest("rleu", funcs.clone()), Some("relu"));
        assert_eq!(closest("sigmod", funcs.clone()), Some("sigmoid"));
        assert_eq!(closest("conv2d", funcs), None);
    }
}
