//! Password hashing on a few dedicated threads. argon2id takes ~19 MiB and a good slice of a core
//! per hash: on tokio's blocking pool a burst of sign-ins would hash on as many threads as it
//! has requests, and every one of those threads keeps its allocator arena's 19 MiB afterwards
//! (measured: +172 MB RSS after a flood). Here at most `threads` hashes run at once, the memory
//! stays in their arenas, and when the queue is full the caller hears "busy" at once instead of
//! queueing CPU work without bound.

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use tokio::sync::oneshot;

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// Hashes waiting for a thread at most, per thread.
const QUEUE_PER_THREAD: usize = 32;

#[derive(Debug)]
pub struct HashPool {
    jobs: SyncSender<Job>,
}

impl HashPool {
    /// Starts `threads` (at least one) hashing threads; they end when the pool is dropped.
    pub fn new(threads: usize) -> Result<Self> {
        let threads = threads.max(1);
        let (jobs, queue) = sync_channel::<Job>(threads * QUEUE_PER_THREAD);
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("lariat-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let queue = queue.lock().unwrap_or_else(|p| p.into_inner());
                            queue.recv()
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| Error::Internal(format!("starting a hashing thread: {e}")))?;
        }
        Ok(Self { jobs })
    }

    /// Queues `f` for a hashing thread at once (or refuses it: "busy", rate limited, when too
    /// many are waiting already); the future resolves with its result.
    pub fn run<T, F>(&self, f: F) -> impl Future<Output = Result<T>> + Send + 'static
    where
        F: FnOnce() -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let queued = match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Error::RateLimited {
                message: "the server is busy checking passwords; retry in a moment".into(),
                retry_after_secs: 1,
            }),
            Err(TrySendError::Disconnected(_)) => {
                Err(Error::Internal("the hashing threads are gone".into()))
            }
        };
        async move {
            queued?;
            rx.await
                .map_err(|_| Error::Internal("a hashing job was dropped".into()))?
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[tokio::test]
    async fn jobs_run_and_a_full_queue_answers_busy() {
        let pool = HashPool::new(1).unwrap();
        assert_eq!(pool.run(|| Ok(2 + 2)).await.unwrap(), 4);
        // hold the only thread, then fill its queue
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let held = pool.run(move || {
            let _ = wait.recv();
            Ok(())
        });
        // a moment for the thread to take the held job
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let queued: Vec<_> = (0..QUEUE_PER_THREAD)
            .map(|i| pool.run(move || Ok(i)))
            .collect();
        let refused = pool.run(|| Ok(0)).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::RateLimited);
        release.send(()).unwrap();
        held.await.unwrap();
        for (i, q) in queued.into_iter().enumerate() {
            assert_eq!(q.await.unwrap(), i);
        }
    }
}
