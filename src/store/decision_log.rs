//! Group commit for the audit log. Every decision must be durable before it is answered, and a
//! durable SQLite commit costs a sync of the log file (0.2 to 0.6 ms on these machines), which
//! would cap one writer at a few thousand decisions a second and make every request wait for
//! its own sync. The decisions that arrive while a commit is under way are instead committed
//! together in the next transaction: each caller still waits for the commit that holds its
//! record, so nothing is answered before it is on disk, and an idle service commits each
//! decision at once.
//!
//! The writer runs on a thread of its own, with a single-threaded Tokio runtime. On SQLite it
//! commits on that thread through SQLite's C API (`hot`), with the audit file's checkpoints on
//! another thread: at 1,000 scores a second that took the audit log from 6.1 thread switches a
//! decision (this thread, then sqlx's connection thread) to 3.0.

use super::{DecisionRow, Store, StoreError};
use std::sync::Arc;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

/// Most decisions in one transaction.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<(), String>>;

/// A handle to the task that appends decisions to the audit log; cheap to clone.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    queue: mpsc::Sender<(DecisionRow, Reply)>,
    /// Asks the writer to take no more decisions, commit what it holds, and stop.
    closing: Arc<Notify>,
    /// Answered when the writer has stopped.
    stopped: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
}

impl DecisionLog {
    /// Starts the writer on a thread of its own. It ends when every handle is dropped or
    /// [`DecisionLog::close`] is called.
    pub fn start(store: Store) -> std::io::Result<DecisionLog> {
        let (queue, mut rx) = mpsc::channel::<(DecisionRow, Reply)>(4 * MAX_BATCH);
        let closing = Arc::new(Notify::new());
        let close_requested = closing.clone();
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let writer = async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            loop {
                let n = tokio::select! {
                    n = rx.recv_many(&mut batch, MAX_BATCH) => n,
                    // Refuse new decisions; those already queued are still received below.
                    _ = close_requested.notified() => {
                        rx.close();
                        continue;
                    }
                };
                if n == 0 {
                    break;
                }
                let (rows, replies): (Vec<DecisionRow>, Vec<Reply>) = batch.drain(..).unzip();
                let result = store.insert_decisions(&rows).await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, decisions = rows.len(), "audit log write failed");
                }
                // The error is answered as text to each waiting caller; whether it was an
                // outage travels with it.
                let outcome = result.map_err(|e| {
                    if e.is_unavailable() {
                        UNAVAILABLE.to_string()
                    } else {
                        e.to_string()
                    }
                });
                for reply in replies {
                    let _ = reply.send(outcome.clone());
                }
            }
        };
        std::thread::Builder::new()
            .name("audit-log".to_string())
            .spawn(move || {
                runtime.block_on(writer);
                let _ = stop.send(());
            })?;
        Ok(DecisionLog {
            queue,
            closing,
            stopped: Arc::new(Mutex::new(Some(stopped))),
        })
    }

    /// Stops taking decisions and waits until every decision already handed over is committed
    /// (or has failed and been answered as failed). Called at shutdown, after the HTTP server
    /// has finished its requests.
    pub async fn close(&self) {
        self.closing.notify_one();
        let stopped = self.stopped.lock().await.take();
        if let Some(stopped) = stopped
            && stopped.await.is_err()
        {
            tracing::error!("the audit log writer failed");
        }
    }

    /// Appends a decision; returns once the transaction holding it is committed.
    pub async fn append(&self, row: DecisionRow) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Other(anyhow::anyhow!("the audit log writer has stopped"));
        self.queue.send((row, reply)).await.map_err(|_| gone())?;
        match answer.await.map_err(|_| gone())? {
            Ok(()) => Ok(()),
            Err(m) if m == UNAVAILABLE => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
            Err(m) => Err(StoreError::Other(anyhow::anyhow!(
                "writing the audit log: {m}"
            ))),
        }
    }
}

const UNAVAILABLE: &str = "unavailable";
