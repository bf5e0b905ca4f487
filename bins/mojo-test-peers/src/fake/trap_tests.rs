//! The trap and watcher conformance checks on the fake system (both ends of
//! each pipe in one `FakeSystem`).

use std::sync::Arc;

use super::FakeSystem;
use crate::system::MojoSystem;
use crate::system::trap::conformance;

#[test]
fn fake_keeps_the_trap_rules() {
    let sys = FakeSystem::new();
    conformance::trap_rules(&sys);
    conformance::data_pipe_trap(&sys);
    conformance::new_data_trap(&sys);
    conformance::many_triggers(&sys);
    assert_eq!(sys.open_handles(), 0, "every handle closed");
}

#[test]
fn fake_watchers_arm_as_simple_watcher_does() {
    let sys = FakeSystem::new();
    conformance::automatic_watcher(&sys);
    conformance::manual_watcher(&sys);
}

#[test]
fn fake_wakes_a_mio_poll() {
    let sys = Arc::new(FakeSystem::new());
    let (a, b) = sys.create_message_pipe().unwrap();
    conformance::mio_wakes(sys.clone(), Arc::new(a), &*sys, &b);
}
