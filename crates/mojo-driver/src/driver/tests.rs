//! Unit tests of the driver: configuration, waits, exits.

use super::*;

#[test]
fn config_keeps_low_water_under_high_water_and_a_nonzero_budget() {
    let d = Driver::with_config(Config {
        output_high_water: 10,
        output_low_water: 20,
        read_budget_per_turn: 0,
        ..Config::default()
    })
    .unwrap();
    assert_eq!(d.config().output_low_water, 10);
    assert_eq!(d.config().read_budget_per_turn, 1);
    const { assert!(OUTPUT_LOW_WATER < OUTPUT_HIGH_WATER) };
}

#[test]
fn wait_time_is_the_nearest_of_deadline_and_max_wait() {
    let d = Driver::new().unwrap();
    assert_eq!(d.wait_time(None, None), None);
    let max = Duration::from_secs(1);
    assert_eq!(d.wait_time(None, Some(max)), Some(max));
    let soon = Instant::now() + Duration::from_millis(10);
    assert!(d.wait_time(Some(soon), Some(max)).unwrap() <= Duration::from_millis(10));
    let past = Instant::now() - Duration::from_millis(10);
    assert_eq!(d.wait_time(Some(past), None), Some(Duration::ZERO));
}

#[test]
fn a_new_link_is_read_at_once_so_the_next_wait_is_zero() {
    let mut d = Driver::new().unwrap();
    let (link, _theirs) = d.new_link_pair().unwrap();
    assert_eq!(d.wait_time(None, None), Some(Duration::ZERO));
    d.pause_reading(link);
    assert!(d.link_stats(link).unwrap().paused);
    assert_eq!(d.wait_time(None, None), None);
    d.resume_reading(link);
    assert!(!d.link_stats(link).unwrap().paused);
    d.close_link(link);
    assert_eq!(d.link_count(), 0);
    assert_eq!(d.closed.len(), 1);
}

#[test]
fn disconnects_are_hang_ups_and_other_failures_are_channel_errors() {
    let full = ChannelError::BufferFull { limit: 1 };
    assert_eq!(
        channel_close_reason(full.clone(), (1, 0)),
        CloseReason::Channel(full)
    );
}

#[test]
fn exits_print_their_reason() {
    assert_eq!(Exit::AllLinksClosed.to_string(), "all links closed");
    assert_eq!(
        Exit::Signal(ShutdownSignal::Terminate).to_string(),
        "received SIGTERM"
    );
    let e: DriverError<std::io::Error> = DriverError::Overconsumed {
        link: LinkId(2),
        consumed: 5,
        available: 4,
    };
    assert_eq!(
        e.to_string(),
        "link 2: the core consumed 5 bytes of 4 (core bug)"
    );
}
