//! Collectives: the few operations that a group of processes training one model together
//! needs (synchronous data-parallel training; the `relgrad-mpi` crate implements them on
//! MPI). Each process holds a [`Shard`] of the rows; sums over rows are formed per process
//! and added up across the group, so every process sees the same numbers and takes the
//! same steps. A single process is the group [`Alone`].

/// A group of processes (ranks) that reduce and broadcast together. Every process must
/// call each operation in the same order with buffers of the same length.
pub trait Collective {
    /// This process's index in the group, `0..size()`.
    fn rank(&self) -> usize;
    /// The number of processes in the group.
    fn size(&self) -> usize;
    /// `recv = ` the elementwise sum of every process's `send` (all get the sum).
    fn sum_f64(&self, send: &[f64], recv: &mut [f64]);
    /// `recv = ` the elementwise sum of every process's `send` (all get the sum).
    fn sum_f32(&self, send: &[f32], recv: &mut [f32]);
    /// Copies the `buf` of process `root` into every process's `buf`.
    fn broadcast(&self, root: usize, buf: &mut [u8]);

    /// Sums `buf` across the group in place (copies it once: not for hot loops).
    fn sum_in_place(&self, buf: &mut [f64]) {
        if self.size() > 1 {
            let send = buf.to_vec();
            self.sum_f64(&send, buf);
        }
    }

    /// Whether any process of the group says `yes` (every process gets the same answer).
    fn any(&self, yes: bool) -> bool {
        if self.size() == 1 {
            return yes;
        }
        let mut v = [f64::from(u8::from(yes))];
        self.sum_in_place(&mut v);
        v[0] > 0.0
    }

    /// Agrees on whether every process succeeded: all get `Ok(())`, or all get the
    /// failure of the lowest failing rank, with its message. Call it where a process may
    /// fail alone (its own data, its own files), so that no process goes on to wait in a
    /// reduction for one that has stopped.
    fn agree(&self, local: Result<(), String>) -> Result<(), Failure> {
        if self.size() == 1 {
            return local.map_err(|message| Failure { rank: 0, message });
        }
        let mut flags = vec![0.0; self.size()];
        if local.is_err() {
            flags[self.rank()] = 1.0;
        }
        self.sum_in_place(&mut flags);
        let Some(root) = flags.iter().position(|&f| f > 0.0) else {
            return Ok(());
        };
        let mut buf = [0u8; FAILURE_MESSAGE_BYTES];
        if let Err(m) = &local {
            let bytes = m.as_bytes();
            let n = bytes.len().min(FAILURE_MESSAGE_BYTES);
            buf[..n].copy_from_slice(&bytes[..n]);
        }
        self.broadcast(root, &mut buf);
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Err(Failure {
            rank: root,
            message: String::from_utf8_lossy(&buf[..end]).into_owned(),
        })
    }
}

/// The longest failure message [`Collective::agree`] passes on (longer ones are cut).
pub const FAILURE_MESSAGE_BYTES: usize = 4096;

/// One process's failure, as every process of the group learns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The failing process's rank.
    pub rank: usize,
    /// What went wrong there.
    pub message: String,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "rank {}: {}", self.rank, self.message)
    }
}

/// The group of one process: every operation is the identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Alone;

impl Collective for Alone {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f64(&self, send: &[f64], recv: &mut [f64]) {
        recv.copy_from_slice(send);
    }
    fn sum_f32(&self, send: &[f32], recv: &mut [f32]) {
        recv.copy_from_slice(send);
    }
    fn broadcast(&self, _root: usize, _buf: &mut [u8]) {}
}

impl<C: Collective + ?Sized> Collective for &C {
    fn rank(&self) -> usize {
        (**self).rank()
    }
    fn size(&self) -> usize {
        (**self).size()
    }
    fn sum_f64(&self, send: &[f64], recv: &mut [f64]) {
        (**self).sum_f64(send, recv)
    }
    fn sum_f32(&self, send: &[f32], recv: &mut [f32]) {
        (**self).sum_f32(send, recv)
    }
    fn broadcast(&self, root: usize, buf: &mut [u8]) {
        (**self).broadcast(root, buf)
    }
}

/// One member of a group of threads in one process that stand in for processes: the
/// group's collectives, without MPI, for tests of data-parallel training (sums are formed
/// in rank order, in the buffers' precision, as an MPI reduction on one machine would).
/// Every member must run on its own thread.
pub struct ThreadGroup {
    rank: usize,
    shared: std::sync::Arc<Shared>,
}

struct Shared {
    barrier: std::sync::Barrier,
    slots: std::sync::Mutex<Vec<Vec<f64>>>,
    bytes: std::sync::Mutex<Vec<u8>>,
}

impl ThreadGroup {
    /// The `size` members of a new group, rank by rank.
    pub fn new(size: usize) -> Vec<ThreadGroup> {
        let shared = std::sync::Arc::new(Shared {
            barrier: std::sync::Barrier::new(size),
            slots: std::sync::Mutex::new(vec![Vec::new(); size]),
            bytes: std::sync::Mutex::new(Vec::new()),
        });
        (0..size)
            .map(|rank| ThreadGroup {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    /// Posts `send`, waits for every member, then adds the posts up in rank order with `add`.
    fn reduce(&self, send: Vec<f64>, mut add: impl FnMut(usize, &[f64])) {
        let sh = &self.shared;
        sh.slots.lock().expect("no member panicked")[self.rank] = send;
        sh.barrier.wait();
        {
            let slots = sh.slots.lock().expect("no member panicked");
            for s in slots.iter() {
                for (i, &v) in s.iter().enumerate() {
                    add(i, &[v]);
                }
            }
        }
        sh.barrier.wait();
    }
}

impl Collective for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.slots.lock().expect("no member panicked").len()
    }
    fn sum_f64(&self, send: &[f64], recv: &mut [f64]) {
        recv.fill(0.0);
        self.reduce(send.to_vec(), |i, v| recv[i] += v[0]);
    }
    fn sum_f32(&self, send: &[f32], recv: &mut [f32]) {
        recv.fill(0.0);
        let send = send.iter().map(|&v| f64::from(v)).collect();
        self.reduce(send, |i, v| recv[i] += v[0] as f32);
    }
    fn broadcast(&self, root: usize, buf: &mut [u8]) {
        let sh = &self.shared;
        if self.rank == root {
            *sh.bytes.lock().expect("no member panicked") = buf.to_vec();
        }
        sh.barrier.wait();
        if self.rank != root {
            buf.copy_from_slice(&sh.bytes.lock().expect("no member panicked"));
        }
        sh.barrier.wait();
    }
}

/// Which rows of a data set one process holds: rows `offset .. offset + len` of `total`
/// (a contiguous range of the set's row numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// The first row held.
    pub offset: usize,
    /// Rows held.
    pub len: usize,
    /// Rows of the whole set.
    pub total: usize,
}

impl Shard {
    /// All `total` rows.
    pub fn whole(total: usize) -> Self {
        Self {
            offset: 0,
            len: total,
            total,
        }
    }

    /// Rank `rank`'s part of `total` rows split into `size` contiguous, nearly equal parts
    /// (the first `total % size` ranks hold one row more).
    pub fn even(total: usize, rank: usize, size: usize) -> Self {
        let (base, extra) = (total / size.max(1), total % size.max(1));
        let offset = rank * base + rank.min(extra);
        Self {
            offset,
            len: base + usize::from(rank < extra),
            total,
        }
    }

    /// Whether this process holds every row.
    pub fn is_whole(&self) -> bool {
        self.len == self.total
    }

    /// The local index of the set's row `row`, if this process holds it.
    #[inline]
    pub fn local(&self, row: usize) -> Option<usize> {
        row.checked_sub(self.offset).filter(|&i| i < self.len)
    }

    /// How many of the set's first `k` rows this process holds (they are its first ones).
    pub fn local_prefix(&self, k: usize) -> usize {
        k.saturating_sub(self.offset).min(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_shards_cover_every_row_once() {
        for total in [0, 1, 7, 100] {
            for size in 1..6 {
                let mut next = 0;
                for rank in 0..size {
                    let s = Shard::even(total, rank, size);
                    assert_eq!(s.offset, next);
                    assert!(s.len.abs_diff(total / size) <= 1);
                    next += s.len;
                }
                assert_eq!(next, total);
            }
        }
    }

    #[test]
    fn local_rows_and_prefixes() {
        let s = Shard::even(10, 1, 3); // rows 4..7
        assert_eq!((s.offset, s.len), (4, 3));
        assert_eq!(s.local(3), None);
        assert_eq!(s.local(4), Some(0));
        assert_eq!(s.local(6), Some(2));
        assert_eq!(s.local(7), None);
        assert_eq!(
            [0, 4, 5, 7, 100].map(|k| s.local_prefix(k)),
            [0, 0, 1, 3, 3]
        );
    }

    #[test]
    fn a_thread_group_sums_broadcasts_and_agrees() {
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = ThreadGroup::new(3)
                .into_iter()
                .map(|g| {
                    s.spawn(move || {
                        let r = g.rank() as f64;
                        let mut recv = [0.0; 2];
                        g.sum_f64(&[r, 1.0], &mut recv);
                        let mut b = [g.rank() as u8; 3];
                        g.broadcast(2, &mut b);
                        let ok = g.agree(Ok(()));
                        let bad = g.agree(if g.rank() >= 1 {
                            Err(format!("bad data on rank {}", g.rank()))
                        } else {
                            Ok(())
                        });
                        (recv, b, ok, bad)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (recv, b, ok, bad) in results {
            assert_eq!(recv, [3.0, 3.0]);
            assert_eq!(b, [2, 2, 2]);
            assert_eq!(ok, Ok(()));
            let f = bad.unwrap_err();
            assert_eq!((f.rank, f.message.as_str()), (1, "bad data on rank 1"));
        }
    }

    #[test]
    fn alone_agrees_with_itself() {
        assert_eq!(Alone.agree(Ok(())), Ok(()));
        let f = Alone.agree(Err("bad".into())).unwrap_err();
        assert_eq!(f.to_string(), "rank 0: bad");
    }
}
