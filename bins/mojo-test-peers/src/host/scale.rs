//! The `scale` scenario (ours, not the spec's; issue 11: "10,000 pipes
//! alive at once with per-message cost unchanged"). With `--scale-pipes=N`
//! the host opens N pipes to the client, all alive at once, and measures
//! with all of them open:
//!
//! 1. open: for each pipe a probe Echo is queued on the host's end, then the
//!    client's ends go over the main pipe in ScaleOpen messages of
//!    [`SCALE_OPEN_BATCH`] handles; the client echoes each probe, and the
//!    host reads every echo of a batch before sending the next. Line
//!    `scale_open` (the bench samples the proxy's memory here, N alive).
//! 2. measure: [`LATENCY_WARMUP`] + `scale_rounds` 64 B Echo round trips on
//!    the main pipe; as many again spread over the scale pipes (ScaleEcho:
//!    the k-th on pipe `k mod N`); a one-way run of `scale_sink` 64 B
//!    SinkData messages, the k-th on pipe `k mod N` (ScaleSink, answered by
//!    a SinkAck on the main pipe), after the same one-way run on the main
//!    pipe alone (SinkStart). Marker lines end each window: `scale_rtt`
//!    (the round trips) and `scale_tput_main` (the main-pipe run), each
//!    with `messages`, those the window made the proxy carry; line `scale`
//!    has every figure and the spread run's `messages` (so a bench can
//!    divide the proxy's CPU time of each window by its messages).
//! 3. close: ScaleClose; the client closes its ends and replies
//!    ScaleClosed; every host end must then see PEER_CLOSED. Line
//!    `scale_close`.

use std::time::Instant;

use super::report::{add_err, ms};
use super::{Host, LATENCY_WARMUP, SCALE_OPEN_BATCH, TimedOut};
use crate::protocol::{Payload, op};
use crate::system::{MessagePipe, MojoSystem, Signals};

/// Size of every measured message (the opcode included).
pub(super) const SCALE_MESSAGE_SIZE: usize = 64;

/// The probe queued on pipe `index` before its other end moves.
pub(super) fn scale_probe(index: u32) -> Vec<u8> {
    let mut m = Payload::Echo(index.to_le_bytes().to_vec()).encode();
    m.resize(16, 0x33);
    m
}

/// The sample at quantile `q` of sorted nanoseconds, in µs (the `latency`
/// scenario's rule: index `floor(q * len)`).
pub(super) fn percentile_us(sorted_ns: &[u64], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let idx = ((q * sorted_ns.len() as f64) as usize).min(sorted_ns.len() - 1);
    sorted_ns[idx] as f64 / 1e3
}

/// Round trips of one run: the measured ones (warm-up dropped), sorted.
struct Rtts {
    ns: Vec<u64>,
    done: usize,
}

impl<S: MojoSystem> Host<'_, S> {
    pub(super) fn scale(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let n = self.cfg.counts.scale_pipes as usize;
        let mut err = String::new();
        let t0 = Instant::now();
        let (ends, echoed, mismatches) = self.scale_open(pipe, n, &mut err)?;
        let open_ms = ms(t0.elapsed());
        let opened = ends.len();
        let open_ok = n > 0 && opened == n && echoed == n && mismatches == 0 && err.is_empty();
        let mut j = self.line("scale_open", open_ok);
        j.int("pipes", n as i128)
            .int("opened", opened as i128)
            .int("echoed", echoed as i128)
            .int("mismatches", mismatches as i128)
            .num("open_ms", open_ms)
            .num("open_us_per_pipe", open_ms * 1e3 / n.max(1) as f64)
            .error(&err);
        self.print(&j);
        if !open_ok {
            return Ok(());
        }
        self.scale_measure(pipe, &ends)?;
        self.scale_close(pipe, ends)
    }

    /// Opens `n` pipes in batches; returns the host's ends, the probes
    /// echoed and the mismatched ones.
    fn scale_open(
        &mut self,
        pipe: &MessagePipe,
        n: usize,
        err: &mut String,
    ) -> Result<(Vec<MessagePipe>, usize, usize), TimedOut> {
        let mut ends: Vec<MessagePipe> = Vec::with_capacity(n);
        let (mut echoed, mut mismatches) = (0usize, 0usize);
        while ends.len() < n && err.is_empty() {
            let first = ends.len();
            let count = SCALE_OPEN_BATCH.min(n - first);
            let mut handles = Vec::with_capacity(count);
            for i in first..first + count {
                let Ok((a, b)) = self.sys.create_message_pipe() else {
                    add_err(err, &format!("create pipe {i} failed"));
                    break;
                };
                if self.write(&a, &scale_probe(i as u32), Vec::new()).is_err() {
                    add_err(err, &format!("probe write on pipe {i} failed"));
                }
                ends.push(a);
                handles.push(b.into());
            }
            let open = Payload::ScaleOpen {
                first: first as u32,
                count: handles.len() as u32,
            };
            if self.send(pipe, &open, handles).is_err() {
                add_err(err, &format!("ScaleOpen {first} failed"));
                break;
            }
            let deadline = Instant::now() + self.cfg.handle_timeout;
            for (i, end) in ends.iter().enumerate().skip(first) {
                match self.read(end, Some(deadline))? {
                    Ok(m) if m.bytes == scale_probe(i as u32) => echoed += 1,
                    Ok(_) => mismatches += 1,
                    Err(e) => {
                        add_err(err, &format!("probe echo {i}: r={}", e.code()));
                        break;
                    }
                }
            }
        }
        Ok((ends, echoed, mismatches))
    }

    /// `rounds` timed 64 B round trips, the k-th on `pipe_of(k)`.
    fn round_trips(
        &mut self,
        rounds: usize,
        pipe_of: impl Fn(usize) -> usize,
        pipes: &[&MessagePipe],
        err: &mut String,
    ) -> Result<Rtts, TimedOut> {
        let mut m = vec![0x5au8; SCALE_MESSAGE_SIZE];
        m[..4].copy_from_slice(&op::ECHO.to_le_bytes());
        let mut ns = Vec::with_capacity(rounds);
        let mut done = 0;
        for k in 0..LATENCY_WARMUP + rounds {
            let p = pipes[pipe_of(k)];
            let t0 = Instant::now();
            let _ = self.write(p, &m, Vec::new());
            let Some(got) = self.read_expect(p, op::ECHO, err)? else {
                break;
            };
            let dt = t0.elapsed().as_nanos() as u64;
            if got.bytes != m {
                add_err(err, &format!("round trip {k}: echo differs"));
                break;
            }
            done += 1;
            if k >= LATENCY_WARMUP {
                ns.push(dt);
            }
        }
        ns.sort_unstable();
        Ok(Rtts { ns, done })
    }

    fn scale_measure(&mut self, pipe: &MessagePipe, ends: &[MessagePipe]) -> Result<(), TimedOut> {
        let n = ends.len();
        let rounds = self.cfg.counts.scale_rounds;
        let total = LATENCY_WARMUP + rounds;
        let mut err = String::new();
        let t0 = Instant::now();
        let main = self.round_trips(rounds, |_| 0, &[pipe], &mut err)?;
        // Spread: the client reads the k-th echo from pipe k mod N.
        let _ = self.send(
            pipe,
            &Payload::ScaleEcho {
                count: total as u64,
            },
            Vec::new(),
        );
        let refs: Vec<&MessagePipe> = ends.iter().collect();
        let spread = self.round_trips(rounds, |k| k % n, &refs, &mut err)?;
        let mut client_echoed = 0;
        if let Some(m) = self.read_expect(pipe, op::SCALE_ECHO_DONE, &mut err)? {
            if let Some(Payload::ScaleEchoDone { echoed }) = self.decode(&m, &mut err) {
                client_echoed = echoed;
            }
        }
        // A marker line between the two windows (the bench samples the
        // proxy's CPU time here): what the round trips made it carry.
        let rtt_messages = 2 * (main.done + spread.done) as u64 + 2;
        let mut j = self.line("scale_rtt", err.is_empty());
        j.int("pipes", n as i128)
            .int("messages", i128::from(rtt_messages))
            .error(&err);
        self.print(&j);
        // One-way on the main pipe (the main bench's `throughput_64`, with
        // N pipes alive), then a marker line ending that window.
        let count = self.cfg.counts.scale_sink;
        let size = SCALE_MESSAGE_SIZE as u64;
        let start = Payload::SinkStart { count, size };
        let on_main = self.one_way(pipe, &start, count, |_| pipe, &mut err)?;
        let mut j = self.line("scale_tput_main", err.is_empty());
        j.int("pipes", n as i128)
            .int("messages", i128::from(count + 2))
            .error(&err);
        self.print(&j);
        // One-way, spread over the pipes.
        let start = Payload::ScaleSink { count, size };
        let spread_run = self.one_way(
            pipe,
            &start,
            count,
            |k| &ends[(k % n as u64) as usize],
            &mut err,
        )?;
        let (received, bad, sink_s) = spread_run;
        let elapsed = t0.elapsed();
        // What the proxy carried between `scale_tput_main` and this line.
        let messages = count + 2;
        let pass = main.ns.len() == rounds
            && on_main.0 == count
            && on_main.1 == 0
            && spread.ns.len() == rounds
            && client_echoed == total as u64
            && received == count
            && bad == 0
            && err.is_empty();
        let mut j = self.line("scale", pass);
        j.int("pipes", n as i128)
            .int("rounds", rounds as i128)
            .num("rtt_64_p50_us", percentile_us(&main.ns, 0.5))
            .num("rtt_64_p99_us", percentile_us(&main.ns, 0.99))
            .num("spread_rtt_64_p50_us", percentile_us(&spread.ns, 0.5))
            .num("spread_rtt_64_p99_us", percentile_us(&spread.ns, 0.99))
            .int("client_echoed", i128::from(client_echoed))
            .int("tput_count", i128::from(count))
            .int("tput_received", i128::from(received))
            .int("tput_bad", i128::from(bad))
            .num("main_tput_64_msgs_s", count as f64 / on_main.2)
            .num("tput_64_msgs_s", count as f64 / sink_s)
            .int("messages", i128::from(messages))
            .num("elapsed_ms", ms(elapsed))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    /// Sends `start` on `main`, then `count` 64 B SinkData messages, the
    /// k-th on `pipe_of(k)`, and reads the SinkAck on `main`: (received,
    /// bad, seconds from `start` to the ack).
    fn one_way<'p>(
        &mut self,
        main: &MessagePipe,
        start: &Payload,
        count: u64,
        pipe_of: impl Fn(u64) -> &'p MessagePipe,
        err: &mut String,
    ) -> Result<(u64, u64, f64), TimedOut> {
        let mut data = vec![0xabu8; SCALE_MESSAGE_SIZE];
        data[..4].copy_from_slice(&op::SINK_DATA.to_le_bytes());
        let t0 = Instant::now();
        let _ = self.send(main, start, Vec::new());
        for k in 0..count {
            let _ = self.write(pipe_of(k), &data, Vec::new());
        }
        let (mut received, mut bad) = (0, 0);
        if let Some(m) = self.read_expect(main, op::SINK_ACK, err)? {
            if let Some(Payload::SinkAck {
                received: r,
                bad: b,
                ..
            }) = self.decode(&m, err)
            {
                (received, bad) = (r, b);
            }
        }
        Ok((received, bad, t0.elapsed().as_secs_f64()))
    }

    fn scale_close(&mut self, pipe: &MessagePipe, ends: Vec<MessagePipe>) -> Result<(), TimedOut> {
        let mut err = String::new();
        let t0 = Instant::now();
        let _ = self.send(pipe, &Payload::ScaleClose, Vec::new());
        let mut closed = 0;
        if let Some(m) = self.read_expect(pipe, op::SCALE_CLOSED, &mut err)? {
            if let Some(Payload::ScaleClosed { closed: c }) = self.decode(&m, &mut err) {
                closed = c;
            }
        }
        let deadline = Instant::now() + self.cfg.handle_timeout;
        let mut peer_closed = 0usize;
        for (i, end) in ends.iter().enumerate() {
            match self.wait(end.raw(), Signals::PEER_CLOSED, Some(deadline))? {
                Ok(()) => peer_closed += 1,
                Err(e) => {
                    add_err(
                        &mut err,
                        &format!("pipe {i} not peer-closed: r={}", e.code()),
                    );
                    break;
                }
            }
        }
        let close_ms = ms(t0.elapsed());
        let n = ends.len();
        drop(ends);
        let pass = closed == n as u64 && peer_closed == n && err.is_empty();
        let mut j = self.line("scale_close", pass);
        j.int("pipes", n as i128)
            .int("client_closed", i128::from(closed))
            .int("peer_closed", peer_closed as i128)
            .num("close_ms", close_ms)
            .error(&err);
        self.print(&j);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_latency_rule() {
        let ns: Vec<u64> = (1..=100).map(|v| v * 1000).collect();
        assert_eq!(percentile_us(&ns, 0.5), 51.0);
        assert_eq!(percentile_us(&ns, 0.99), 100.0);
        assert_eq!(percentile_us(&[], 0.5), 0.0);
        assert_eq!(percentile_us(&[7000], 0.99), 7.0);
    }

    #[test]
    fn probes_differ_per_pipe() {
        assert_eq!(scale_probe(0).len(), 16);
        assert_eq!(crate::protocol::opcode_of(&scale_probe(1)), op::ECHO);
        assert_ne!(scale_probe(1), scale_probe(257));
    }
}
