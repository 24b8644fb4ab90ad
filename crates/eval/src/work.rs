//! The work queue: items taken in turn by one thread per worker (each worker holds its own pipeline,
//! so model sessions are never shared), results back in item order.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::EvalError;

/// `work(worker, item)` for every item, one thread per worker; results in item order, the first error
/// (in item order) wins.
///
/// # Errors
/// The first error of `work`; `lost` when a worker thread panicked and left items undone.
pub fn parallel_map<W: Sync, T: Sync, R: Send, E: Send>(
    items: &[T],
    workers: &[W],
    work: impl Fn(&W, &T) -> Result<R, E> + Sync,
    lost: impl Fn() -> E,
) -> Result<Vec<R>, E> {
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<R, E>>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for worker in workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { return };
                    let outcome = work(worker, item);
                    if let Ok(mut slots) = slots.lock() {
                        slots[i] = Some(outcome);
                    }
                }
            });
        }
    });
    let slots = slots.into_inner().map_err(|_| lost())?;
    slots.into_iter().map(|slot| slot.unwrap_or_else(|| Err(lost()))).collect()
}

/// [`EvalError::Worker`], for [`parallel_map`]'s `lost`.
pub fn lost_worker() -> EvalError {
    EvalError::Worker("a worker thread panicked".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_item_order_and_errors_win() {
        let items: Vec<u32> = (0..100).collect();
        let doubled = parallel_map(&items, &[(), (), ()], |_, &i| Ok::<_, EvalError>(i * 2), lost_worker);
        assert_eq!(doubled.expect("all done"), items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let failed = parallel_map(&items, &[(), ()], |_, &i| if i == 7 { Err(i) } else { Ok(i) }, || 0);
        assert_eq!(failed, Err(7));
    }
}
