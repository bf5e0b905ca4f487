//! The one place that builds node and port names.
//!
//! The name types come from `mojo-legacy-wire`. Every other module of this
//! crate builds, compares and validates names only through these functions,
//! so a change of the wire crate's name representation touches this file
//! alone.

use mojo_legacy_wire::{NodeName, PortName};
use mojo_wire_kit::RandomSource;

/// The invalid node name (all zero): the target of a broadcast `ObserveProxy`.
pub const INVALID_NODE: NodeName = NodeName::INVALID;
/// The invalid port name (all zero): the destination of a broadcast.
pub const INVALID_PORT: PortName = PortName::INVALID;

/// A node name from its two 64-bit halves, in wire order.
pub const fn node_name(high: u64, low: u64) -> NodeName {
    NodeName::new(high, low)
}

/// A port name from its two 64-bit halves, in wire order.
pub const fn port_name(high: u64, low: u64) -> PortName {
    PortName::new(high, low)
}

/// A fresh random, valid (non-zero) node name.
pub fn random_node_name(rng: &mut dyn RandomSource) -> NodeName {
    let (high, low) = rng.nonzero_u128();
    node_name(high, low)
}

/// A fresh random, valid (non-zero) port name.
pub fn random_port_name(rng: &mut dyn RandomSource) -> PortName {
    let (high, low) = rng.nonzero_u128();
    port_name(high, low)
}

/// True unless `name` is the invalid node name.
pub fn node_is_valid(name: NodeName) -> bool {
    name != INVALID_NODE
}

/// True unless `name` is the invalid port name.
pub fn port_is_valid(name: PortName) -> bool {
    name != INVALID_PORT
}

#[cfg(test)]
mod tests {
    use super::*;
    use mojo_wire_kit::SeededRandom;

    #[test]
    fn random_names_are_valid_and_distinct() {
        let mut rng = SeededRandom::new(7);
        let a = random_port_name(&mut rng);
        let b = random_port_name(&mut rng);
        assert!(port_is_valid(a) && port_is_valid(b));
        assert_ne!(a, b);
        assert!(node_is_valid(random_node_name(&mut rng)));
        assert!(!node_is_valid(INVALID_NODE));
        assert!(!port_is_valid(INVALID_PORT));
        assert_eq!(node_name(1, 2), node_name(1, 2));
        assert_ne!(port_name(1, 2), port_name(2, 1));
    }
}
