//! What a transcript carries, told from its bytes: every reading (ipcz,
//! legacy with the libchrome profile, legacy with the desktop profile) is
//! tried leniently and the one under which most frames decode wins. The
//! bytes decide clearly: ipcz frames start with an `IpczHeader` a legacy
//! deframer rejects, and the legacy channel header form (8-byte
//! `NORMAL_LEGACY` or 16-byte) goes with the event header size of its
//! profile, so the other profile misreads the ports events.

use std::fmt;

use mojo_transcript::Transcript;

use crate::view::DecodedStream;
use crate::{DecodeOptions, LegacyProfile, Protocol, ipcz, legacy};

/// One way to read a transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reading {
    /// The protocol.
    pub protocol: Protocol,
    /// The legacy profile (meaningless for ipcz; kept at libchrome there).
    pub profile: LegacyProfile,
}

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.protocol, self.profile) {
            (Protocol::Ipcz, _) => f.write_str("ipcz"),
            (Protocol::Legacy, LegacyProfile::Libchrome) => {
                f.write_str("legacy, libchrome profile")
            }
            (Protocol::Legacy, LegacyProfile::Desktop) => f.write_str("legacy, desktop profile"),
        }
    }
}

/// Every reading, in the order ties are broken.
pub(crate) const READINGS: [Reading; 3] = [
    Reading {
        protocol: Protocol::Ipcz,
        profile: LegacyProfile::Libchrome,
    },
    Reading {
        protocol: Protocol::Legacy,
        profile: LegacyProfile::Libchrome,
    },
    Reading {
        protocol: Protocol::Legacy,
        profile: LegacyProfile::Desktop,
    },
];

/// Decodes every stream of `transcript` as `reading`.
pub(crate) fn decode(
    transcript: &Transcript,
    reading: Reading,
    verify: bool,
) -> Vec<DecodedStream> {
    let options = DecodeOptions {
        verify,
        legacy_profile: reading.profile,
    };
    transcript
        .streams()
        .into_iter()
        .map(|(key, stream)| {
            let report = match reading.protocol {
                Protocol::Legacy => legacy::decode_stream(key, &stream, options),
                Protocol::Ipcz => ipcz::decode_stream(key, &stream, options),
            };
            DecodedStream {
                key,
                stream,
                report,
            }
        })
        .collect()
}

/// How well a reading fits: frames that decoded, and frames tried (a
/// stream whose deframing stopped on a bad header counts one more).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fit {
    /// Frames without a failure.
    pub good: usize,
    /// Frames, plus streams stopped by a malformed frame.
    pub tried: usize,
}

impl Fit {
    /// Of decoded streams.
    pub(crate) fn of(streams: &[DecodedStream]) -> Self {
        let mut fit = Self { good: 0, tried: 0 };
        for s in streams {
            fit.tried += s.report.frames.len();
            fit.good += s
                .report
                .frames
                .iter()
                .filter(|f| f.failure.is_none())
                .count();
            if s.report.stopped.is_some() && !s.report.partial_tail {
                fit.tried += 1;
            }
        }
        fit
    }

    /// Some frame failed. A wrong profile can decode most frames into
    /// plausible nonsense and fail only a few, so any failure is reason
    /// enough to look for a better reading.
    pub(crate) fn fails(self) -> bool {
        self.good < self.tried
    }
}

/// The reading under which most frames decode (ties: [`READINGS`] order).
pub(crate) fn detect(transcript: &Transcript) -> (Reading, Fit) {
    let mut best: Option<(Reading, Fit)> = None;
    for reading in READINGS {
        let fit = Fit::of(&decode(transcript, reading, false));
        let better = best
            .is_none_or(|(_, b)| fit.good > b.good || (fit.good == b.good && fit.tried < b.tried));
        if better {
            best = Some((reading, fit));
        }
    }
    best.unwrap_or((READINGS[0], Fit { good: 0, tried: 0 }))
}

/// When frames fail read as `given` and another reading decodes more of
/// them, a sentence saying so.
pub(crate) fn hint(transcript: &Transcript, given: Reading, fit: Fit) -> Option<String> {
    if !fit.fails() {
        return None;
    }
    let (best, best_fit) = detect(transcript);
    (best != given && best_fit.good > fit.good).then(|| {
        format!(
            "{} of {} frames fail read as {given}; the bytes read as {best} \
             ({} of {} frames decode): try without --protocol/--legacy-profile",
            fit.tried - fit.good,
            fit.tried,
            best_fit.good,
            best_fit.tried
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mojo_transcript::testing::vectors;

    fn read(file: &str) -> Transcript {
        Transcript::from_path(&vectors().join(file)).unwrap()
    }

    #[test]
    #[cfg_attr(
        mojo_vectors_missing,
        ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
    )]
    fn each_vector_is_detected_as_what_it_is() {
        for (file, want) in [
            ("cros/connect_only-host_proxy.jsonl", READINGS[0]),
            ("desktop/shmem-host_proxy.jsonl", READINGS[0]),
            ("cros/connect_only-proxy_client.jsonl", READINGS[1]),
            ("cros/direct_legacy-host_client.jsonl", READINGS[1]),
            ("desktop/connect_only-proxy_client.jsonl", READINGS[2]),
            ("desktop/shmem-proxy_client.jsonl", READINGS[2]),
        ] {
            let (got, fit) = detect(&read(file));
            assert_eq!(got, want, "{file}: {fit:?}");
            assert_eq!(fit.good, fit.tried, "{file}");
            assert!(fit.good > 0, "{file}");
        }
    }

    #[test]
    #[cfg_attr(
        mojo_vectors_missing,
        ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
    )]
    fn a_wrong_reading_gets_a_hint_naming_the_right_one() {
        let t = read("desktop/connect_only-proxy_client.jsonl");
        let wrong = READINGS[1];
        let fit = Fit::of(&decode(&t, wrong, false));
        let said = hint(&t, wrong, fit).expect("a hint");
        assert!(said.contains("read as legacy, desktop profile"), "{said}");
        let t = read("cros/connect_only-host_proxy.jsonl");
        let fit = Fit::of(&decode(&t, wrong, false));
        let said = hint(&t, wrong, fit).expect("a hint");
        assert!(said.contains("the bytes read as ipcz"), "{said}");
        // The right reading gets none.
        let right = READINGS[0];
        assert_eq!(hint_for(&t, right), None);
    }

    fn hint_for(t: &Transcript, r: Reading) -> Option<String> {
        hint(t, r, Fit::of(&decode(t, r, false)))
    }

    #[test]
    fn nothing_to_read_is_ipcz_with_no_frames() {
        let (reading, fit) = detect(&Transcript::default());
        assert_eq!(reading, READINGS[0]);
        assert_eq!(fit, Fit { good: 0, tried: 0 });
        assert!(!fit.fails());
    }
}
