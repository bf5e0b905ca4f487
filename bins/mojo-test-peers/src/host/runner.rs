//! The host's sequence: `connect`, `multi_attach`, the selected scenarios
//! in the reference's order, `shutdown`, and the waits for the children.

use std::time::{Duration, Instant};

use super::report::ms;
use super::{
    CHILD_POLL, ChildRole, ChildStatus, Host, HostOutcome, OUR_SCENARIOS, RUN_ORDER, TimedOut,
};
use crate::protocol::{self, Payload, op};
use crate::system::{MessagePipe, MojoSystem};

impl<S: MojoSystem> Host<'_, S> {
    /// A child's state now.
    pub(super) fn status(&mut self, role: ChildRole) -> ChildStatus {
        self.children.status(role)
    }

    /// Waits up to `max` for both children to exit (the data pipe
    /// scenarios report whether a proxy went down with the transfer).
    pub(super) fn settle(&mut self, max: Duration) {
        let end = Instant::now() + max;
        while Instant::now() < end {
            let proxy_done = self.status(ChildRole::Proxy) != ChildStatus::Running;
            let client_done = self.status(ChildRole::Client) != ChildStatus::Running;
            if proxy_done && client_done {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `WaitChild`: the exit code, -1 on timeout, -4 if never launched.
    pub(super) fn wait_child(
        &mut self,
        role: ChildRole,
        timeout: Duration,
    ) -> Result<i64, TimedOut> {
        let t0 = Instant::now();
        loop {
            match self.status(role) {
                ChildStatus::NotLaunched => return Ok(-4),
                ChildStatus::Exited { code, .. } => return Ok(i64::from(code)),
                ChildStatus::Running => {}
            }
            if t0.elapsed() > timeout {
                return Ok(-1);
            }
            self.check_watchdog()?;
            std::thread::sleep(CHILD_POLL);
        }
    }

    /// `connect`, `multi_attach`, the selected scenarios in [`RUN_ORDER`]
    /// and then [`OUR_SCENARIOS`], `shutdown`.
    pub(super) fn run_all(
        &mut self,
        pipes: Vec<MessagePipe>,
        spawned_at: Instant,
        invitation_sent_at: Instant,
    ) -> Result<HostOutcome, TimedOut> {
        let Some(pipe) = pipes.first() else {
            let mut j = self.line("connect", false);
            j.error("no attached pipe");
            self.print(&j);
            self.children.kill_all();
            return Ok(HostOutcome::ConnectFailed);
        };
        self.scenario = "connect";
        let mut err = String::new();
        let _ = self.send(pipe, &Payload::Hello { index: 0 }, Vec::new());
        let ok = self.read_expect(pipe, op::HELLO, &mut err)?.is_some();
        let mut j = self.line("connect", ok);
        j.num("first_rtt_ms", ms(invitation_sent_at.elapsed()))
            .num("from_spawn_ms", ms(spawned_at.elapsed()))
            .error(&err);
        self.print(&j);
        if !ok {
            self.children.kill_all();
            return Ok(HostOutcome::ConnectFailed);
        }
        if pipes.len() > 1 {
            self.scenario = "multi_attach";
            self.multi_attach(&pipes)?;
        }
        for &name in RUN_ORDER {
            if !self.cfg.scenarios.contains(name) {
                continue;
            }
            self.arm(name);
            match name {
                "echo_small" => self.echo_small(pipe)?,
                "echo_large" => self.echo_large(pipe)?,
                "subpipe" => self.subpipe(pipe)?,
                "shmem" => self.shmem(pipe)?,
                "platform_handle" => self.platform_handle(pipe)?,
                "close" => self.close(pipe)?,
                "throughput" => self.throughput(pipe)?,
                "latency" => self.latency(pipe)?,
                "subpipe_c2h" => self.subpipe_c2h(pipe)?,
                "shmem_c2h" => {
                    self.shmem_c2h(pipe, false)?;
                    self.scenario = "shmem_c2h_readonly";
                    self.shmem_c2h(pipe, true)?;
                }
                "platform_handle_c2h" => self.platform_handle_c2h(pipe)?,
                "pipe_roundtrip" => {
                    self.pipe_roundtrip(pipe, 1, "pipe_roundtrip")?;
                    self.scenario = "pipe_roundtrip_5hop";
                    self.pipe_roundtrip(pipe, 5, "pipe_roundtrip_5hop")?;
                }
                "many_pipes" => self.many_pipes(pipe)?,
                "leak" => self.leak(pipe)?,
                "datapipe" => {
                    self.scenario = "datapipe_h2c";
                    self.datapipe_h2c(pipe)?;
                    self.scenario = "datapipe_c2h";
                    self.datapipe_c2h(pipe)?;
                }
                "datapipe_h2c" => self.datapipe_h2c(pipe)?,
                "datapipe_c2h" => self.datapipe_c2h(pipe)?,
                _ => {}
            }
        }
        for &name in OUR_SCENARIOS {
            if self.cfg.scenarios.contains(name) {
                self.arm(name);
                match name {
                    "scale" => self.scale(pipe)?,
                    "throughput_extra" => self.throughput_extra(pipe)?,
                    _ => {}
                }
            }
        }
        // shutdown: close our pipes; the client and the proxy must exit 0.
        self.arm("shutdown");
        let t0 = Instant::now();
        drop(pipes);
        let wait = self.cfg.shutdown_wait;
        let client_rc = self.wait_child(ChildRole::Client, wait)?;
        let t_client = t0.elapsed();
        let has_proxy = self.status(ChildRole::Proxy) != ChildStatus::NotLaunched;
        let proxy_rc = if has_proxy {
            self.wait_child(ChildRole::Proxy, wait)?
        } else {
            0
        };
        let t_proxy = t0.elapsed();
        if client_rc == -1 || proxy_rc == -1 {
            self.children.kill_all();
        }
        let mut j = self.line("shutdown", client_rc == 0 && proxy_rc == 0);
        j.int("client_exit", i128::from(client_rc))
            .num("client_exit_ms", ms(t_client));
        if has_proxy {
            j.int("proxy_exit", i128::from(proxy_rc))
                .num("proxy_exit_ms", ms(t_proxy));
        }
        self.print(&j);
        Ok(HostOutcome::Completed)
    }

    /// `multi_attach`: a `kHello` with its index on every attached pipe.
    fn multi_attach(&mut self, pipes: &[MessagePipe]) -> Result<(), TimedOut> {
        let mut ok = 0usize;
        let mut err = String::new();
        for (i, p) in pipes.iter().enumerate() {
            let _ = self.send(p, &Payload::Hello { index: i as u32 }, Vec::new());
        }
        for (i, p) in pipes.iter().enumerate() {
            if let Some(m) = self.read_expect(p, op::HELLO, &mut err)? {
                if protocol::get_u32(&m.bytes, 4) as usize == i {
                    ok += 1;
                }
            }
        }
        let mut j = self.line("multi_attach", ok == pipes.len());
        j.int("pipes", pipes.len() as i128)
            .int("ok", ok as i128)
            .error(&err);
        self.print(&j);
        Ok(())
    }
}
