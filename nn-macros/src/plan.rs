//! The memory plan: which of a network's intermediate values share storage.
//!
//! Every value the generated code computes — a node's batch of activations, a gradient, a
//! layer's scratch memory — has a size (scalars per sample) and a live range: the steps from
//! the one that writes it to the last one that reads it. Two values whose ranges do not
//! overlap can use the same memory. The plan puts every value in a *slot*, a field
//! `SMatrix<T, SIZE, B>` of the generated workspace, such that no two values of a slot are
//! live at the same step; a slot is as large as its largest value, and a value uses the first
//! `size · B` scalars of its slot.
//!
//! Slots rather than offsets into one arena: each slot is its own struct field, so the
//! generated code borrows the values of one step from different fields and the borrow
//! checker, not an `unsafe` block, proves they do not alias.
//!
//! The assignment is greedy: values one after another, each into the best-fitting slot that
//! is free for its whole range (the smallest slot already large enough, else the one that
//! grows least), or into a new slot. Three orders are tried and the smallest plan kept: by
//! decreasing size, as TensorFlow Lite Micro's arena planner (the large values decide the
//! slots), and by start (which makes a chain ping-pong between two slots, where the order by
//! size can need a third); and by decreasing size with the latest values first, which packs
//! the backward pass's gradients before the forward values (a transformer whose attention
//! scratch is live for one step: 904 scalars per sample instead of 1032, bound 776).
//! [`lower_bound`] is what no plan can beat: the most memory live at one step; the tests
//! measure how close the plans come.

/// A value to place: its size per sample and its live range, in steps (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    /// Scalars per sample.
    pub size: usize,
    /// The step that writes it.
    pub first: usize,
    /// The last step that reads it (`>= first`).
    pub last: usize,
}

impl Value {
    fn overlaps(&self, other: &Value) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Where each value lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The slot of each value, by the value's index.
    pub slot_of: Vec<usize>,
    /// Each slot's size per sample: the largest of its values.
    pub slot_sizes: Vec<usize>,
}

impl Plan {
    /// Scalars per sample over all slots.
    pub fn total(&self) -> usize {
        self.slot_sizes.iter().sum()
    }
}

/// Assigns every value a slot; values of one slot are never live at the same step.
pub fn assign(values: &[Value]) -> Plan {
    use std::cmp::Reverse;
    let mut by_size: Vec<usize> = (0..values.len()).collect();
    by_size.sort_by_key(|&i| (Reverse(values[i].size), values[i].first, i));
    let mut by_start: Vec<usize> = (0..values.len()).collect();
    by_start.sort_by_key(|&i| (values[i].first, Reverse(values[i].size), i));
    // scratch11: the third order (attention's scratch made the first two a slot too large).
    let mut by_size_latest_first: Vec<usize> = (0..values.len()).collect();
    by_size_latest_first.sort_by_key(|&i| (Reverse(values[i].size), Reverse(values[i].first), i));
    // The first of the smallest: on a tie, the order by size.
    [by_size, by_start, by_size_latest_first]
        .into_iter()
        .map(|order| assign_in_order(values, order))
        .min_by_key(Plan::total)
        .expect("three orders")
}

/// The greedy best-fit assignment, placing the values in `order`.
fn assign_in_order(values: &[Value], order: Vec<usize>) -> Plan {
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut slot_sizes: Vec<usize> = Vec::new();
    let mut slot_of = vec![usize::MAX; values.len()];
    for i in order {
        let value = &values[i];
        let free: Vec<usize> = (0..members.len())
            .filter(|&s| members[s].iter().all(|&m| !values[m].overlaps(value)))
            .collect();
        let fitting = free
            .iter()
            .copied()
            .filter(|&s| slot_sizes[s] >= value.size)
            .min_by_key(|&s| slot_sizes[s]);
        let growing = || free.iter().copied().max_by_key(|&s| slot_sizes[s]);
        let slot = match fitting.or_else(growing) {
            Some(slot) => slot,
            None => {
                members.push(Vec::new());
                slot_sizes.push(0);
                members.len() - 1
            }
        };
        members[slot].push(i);
        slot_sizes[slot] = slot_sizes[slot].max(value.size);
        slot_of[i] = slot;
    }
    Plan {
        slot_of,
        slot_sizes,
    }
}

/// The most memory (scalars per sample) live at any one step: no plan can use less.
pub fn lower_bound(values: &[Value]) -> usize {
    let steps = values.iter().map(|v| v.last + 1).max().unwrap_or(0);
    (0..steps)
        .map(|step| {
            values
                .iter()
                .filter(|v| v.first <= step && step <= v.last)
                .map(|v| v.size)
                .sum::<usize>()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(size: usize, first: usize, last: usize) -> Value {
        Value { size, first, last }
    }

    /// No two values of a slot are live together, and every slot holds its largest value.
    fn assert_valid(values: &[Value], plan: &Plan) {
        for (i, a) in values.iter().enumerate() {
            assert!(plan.slot_sizes[plan.slot_of[i]] >= a.size);
            for (j, b) in values.iter().enumerate().skip(i + 1) {
                if plan.slot_of[i] == plan.slot_of[j] {
                    assert!(
                        !a.overlaps(b),
                        "values {i} and {j} share a slot while both live"
                    );
                }
            }
        }
    }

    /// A chain `x → v1 → v2 → ...` where step `k` reads value `k` and writes value `k + 1`.
    fn chain(sizes: &[usize]) -> Vec<Value> {
        sizes
            .iter()
            .enumerate()
            .map(|(k, &size)| value(size, k, k + 1))
            .collect()
    }

    #[test]
    fn a_chain_ping_pongs_between_two_slots() {
        // 784 → 1024 → 1024 → 10: at most two values live at once.
        let values = chain(&[784, 1024, 1024, 10]);
        let plan = assign(&values);
        assert_valid(&values, &plan);
        assert_eq!(plan.slot_sizes.len(), 2);
        assert_eq!(plan.total(), 2048);
        assert_eq!(lower_bound(&values), 2048);
    }

    #[test]
    fn a_cifar_sized_cnn_reaches_the_lower_bound() {
        // conv 32·32·32, relu, pool 32·16·16, conv 64·16·16, relu, pool 64·8·8, dense 128,
        // relu, dense 10.
        let values = chain(&[3072, 32768, 32768, 8192, 16384, 16384, 4096, 128, 128, 10]);
        let plan = assign(&values);
        assert_valid(&values, &plan);
        assert_eq!(plan.total(), lower_bound(&values));
        assert_eq!(plan.total(), 65536);
    }

    #[test]
    fn a_residual_keeps_the_skipped_value_apart() {
        // h = f(x) at 0; r = g(h) at 1; s = h + r at 2; y = k(s) at 3.
        let values = [
            value(16, 0, 0),
            value(32, 0, 2),
            value(32, 1, 2),
            value(32, 2, 3),
            value(1, 3, 4),
        ];
        let plan = assign(&values);
        assert_valid(&values, &plan);
        assert_ne!(plan.slot_of[1], plan.slot_of[2]);
        assert_eq!(plan.total(), lower_bound(&values));
    }

    #[test]
    fn scratch_live_for_one_step_reuses_a_dead_value() {
        // A chain, plus a scratch buffer used only at step 2, when value 0 is dead.
        let mut values = chain(&[64, 64, 64, 64]);
        values.push(value(48, 2, 2));
        let plan = assign(&values);
        assert_valid(&values, &plan);
        assert_eq!(plan.total(), lower_bound(&values));
    }

    #[test]
    fn a_transformers_backward_pass_fits_in_three_slots() {
        // The training plan of examples/transformer.rs (S = 8, D = 16): the attention's
        // scratch (520) at forward step 3 and backward step 22, and the gradients of the
        // backward pass; in size order the greedy needs a fourth slot of 128.
        let values = [
            value(128, 23, 24),
            value(128, 21, 23),
            value(128, 3, 4),
            value(128, 21, 22),
            value(520, 3, 3),
            value(520, 22, 22),
            value(128, 20, 21),
            value(128, 16, 20),
            value(256, 6, 7),
            value(256, 18, 19),
            value(256, 17, 18),
            value(128, 8, 9),
            value(128, 16, 17),
            value(128, 15, 16),
            value(128, 10, 11),
            value(128, 14, 15),
            value(128, 13, 14),
        ];
        let plan = assign(&values);
        assert_valid(&values, &plan);
        assert_eq!(plan.slot_sizes, [520, 256, 128]);
        assert_eq!(lower_bound(&values), 776);
    }

    #[test]
    fn nothing_to_place_needs_no_memory() {
        let plan = assign(&[]);
        assert_eq!(plan.total(), 0);
        assert_eq!(lower_bound(&[]), 0);
    }

    /// Random interval sets: the plan is always valid, never below the lower bound, and on
    /// these shapes (dozens of values, sizes spanning two orders of magnitude) within 1.5×.
    #[test]
    fn random_plans_are_valid_and_close_to_the_lower_bound() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        let mut worst: f64 = 1.0;
        for _ in 0..500 {
            let count = 1 + next(40);
            let values: Vec<Value> = (0..count)
                .map(|_| {
                    let first = next(30);
                    value(1 + next(1000), first, first + next(6))
                })
                .collect();
            let plan = assign(&values);
            assert_valid(&values, &plan);
            let bound = lower_bound(&values);
            assert!(plan.total() >= bound);
            worst = worst.max(plan.total() as f64 / bound as f64);
        }
        assert!(worst < 1.5, "worst plan / lower bound = {worst}");
    }
}
