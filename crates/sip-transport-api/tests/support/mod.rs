//! Helpers shared by this crate's integration tests: where the torture corpus lives, and
//! feeding a `StreamDecoder` in chunks. Dev-only; not a test by itself.

// Each test crate that includes this module uses a different subset of it.
#![allow(dead_code)]

use std::path::PathBuf;

use sip_transport_api::{Error, Frame, Limits, StreamDecoder};

/// The `shared/torture` directory, from `SIP_TORTURE_DIR` or beside the repository
/// (`CARGO_MANIFEST_DIR/../../../shared/torture`, as CI lays it out).
///
/// Missing: a loud skip locally (`None`), a panic under CI (`CI=true`), where skipping the
/// torture tests would pass a build that proves nothing.
pub(crate) fn torture_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SIP_TORTURE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/torture"),
    };
    if dir.join("rfc4475").is_dir() && dir.join("rfc5118").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "torture corpus not found at {} (set SIP_TORTURE_DIR); required under CI",
            dir.display()
        );
    }
    eprintln!(
        "\n**************************************************************\n\
         SKIP: torture corpus not found at {}\n\
         set SIP_TORTURE_DIR to the shared/torture directory to run this test\n\
         **************************************************************\n",
        dir.display()
    );
    None
}

/// Every `*.dat` file of one corpus directory, sorted by name, with its bytes.
pub(crate) fn corpus(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

/// How a stream fed to its end finished.
#[derive(Debug)]
pub(crate) enum End {
    /// Every byte was consumed.
    Idle,
    /// Bytes are buffered and the decoder waits for more.
    Waiting {
        buffered: usize,
        reading_headers: bool,
    },
    /// The decoder failed; the connection would be closed.
    Failed(Error),
}

impl PartialEq for End {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (End::Idle, End::Idle) => true,
            (
                End::Waiting {
                    buffered: a,
                    reading_headers: b,
                },
                End::Waiting {
                    buffered: c,
                    reading_headers: d,
                },
            ) => a == c && b == d,
            // `Error` is not `PartialEq` (it holds io errors); the codec's variants print
            // every field, so equal output means the same error.
            (End::Failed(a), End::Failed(b)) => format!("{a:?}") == format!("{b:?}"),
            _ => false,
        }
    }
}

/// Frames and final state of one stream.
#[derive(Debug, PartialEq)]
pub(crate) struct StreamRun {
    pub(crate) frames: Vec<Frame>,
    pub(crate) end: End,
}

/// Feeds `data` to a fresh decoder in chunks of the given sizes (the rest, if any, in one
/// last chunk), decoding everything possible after each chunk.
pub(crate) fn feed_chunks(data: &[u8], sizes: &[usize], limits: &Limits) -> StreamRun {
    let mut dec = StreamDecoder::new(limits.clone());
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut sizes = sizes.iter().copied();
    loop {
        let n = sizes
            .next()
            .unwrap_or(data.len() - pos)
            .min(data.len() - pos);
        // Alternate the two ways of getting bytes in.
        if frames.len() % 2 == 0 {
            dec.extend_from_slice(&data[pos..pos + n]);
        } else {
            dec.buffer_mut().extend_from_slice(&data[pos..pos + n]);
        }
        pos += n;
        loop {
            match dec.decode() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    return StreamRun {
                        frames,
                        end: End::Failed(e),
                    };
                }
            }
        }
        if pos == data.len() {
            break;
        }
    }
    let end = if dec.buffered() == 0 {
        End::Idle
    } else {
        End::Waiting {
            buffered: dec.buffered(),
            reading_headers: dec.is_reading_headers(),
        }
    };
    StreamRun { frames, end }
}

/// Chunkings to try for a stream of `len` bytes: whole, every single split point, and a few
/// fixed chunk sizes including byte by byte.
pub(crate) fn chunkings(len: usize) -> Vec<Vec<usize>> {
    let mut out = vec![vec![len]];
    out.extend((1..len).map(|k| vec![k]));
    for size in [1, 2, 3, 5, 7, 13, 64, 500] {
        out.push(vec![size; len.div_ceil(size)]);
    }
    out
}
