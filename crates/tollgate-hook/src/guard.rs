//! The watchdog: the work runs on a thread of its own; the caller waits for
//! it until the deadline and no longer. A panic, an error or the deadline
//! passing is a refusal shaped for the event being answered (as far as it is
//! known when things went wrong).

use crate::answer::{Answer, refusal};
use crate::{Client, Error, Kind};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Where the work says which kind of event it is answering, so a late or
/// failed answer has the right shape.
#[derive(Clone, Debug)]
pub struct KindSlot(Arc<Mutex<Kind>>);

impl KindSlot {
    /// Records the kind of the event being answered.
    pub fn set(&self, kind: Kind) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = kind;
    }

    fn get(&self) -> Kind {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `work` and returns its answer if it gives one by `deadline`;
/// otherwise (late, failed, panicked) a refusal for `client`. The thread of
/// a late `work` is left behind: the caller answers and exits.
pub fn within<F>(client: Client, deadline: Instant, work: F) -> Answer
where
    F: FnOnce(&KindSlot) -> Result<Answer, Error> + Send + 'static,
{
    let slot = KindSlot(Arc::new(Mutex::new(Kind::Unknown)));
    let (sender, receiver) = mpsc::channel();
    let worker_slot = slot.clone();
    let spawned = std::thread::Builder::new().name("tollgate-hook".into()).spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(|| work(&worker_slot)));
        // The receiver is gone only after the deadline: nobody listens.
        let _ = sender.send(outcome);
    });
    if let Err(error) = spawned {
        return refusal(client, slot.get(), &format!("the hook could not start its work ({error})"));
    }
    let wait = deadline.saturating_duration_since(Instant::now());
    match receiver.recv_timeout(wait) {
        Ok(Ok(Ok(answer))) => answer,
        Ok(Ok(Err(error))) => refusal(client, slot.get(), &error.to_string()),
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            refusal(client, slot.get(), &format!("the hook failed unexpectedly ({what})"))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => refusal(
            client,
            slot.get(),
            "Tollgate could not decide before the hook's deadline (the store may be locked or unreachable)",
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            refusal(client, slot.get(), "the hook's work ended without an answer")
        }
    }
}
