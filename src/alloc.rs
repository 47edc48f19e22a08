//! The process allocator: jemalloc, with a running count of the bytes it has handed out
//! (each allocation counted at its jemalloc size class, as Redis's zmalloc counts usable
//! sizes). The count is exact at every instant, unlike jemalloc's own statistics, which see a
//! thread's freed memory only once its cache is returned; `used_memory` and maxmemory
//! eviction read it.
//!
//! Every thread counts into a cell of its own (a plain load and store, no locked
//! instruction, no cache line shared between cores); reading the total sums the cells.
//! Memory freed by another thread than the one that allocated it makes one cell go down and
//! another up: the sum stays exact.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicIsize, AtomicPtr, Ordering::Relaxed, Ordering::Release};
use tikv_jemallocator::Jemalloc;

/// One thread's count, linked into the list of all of them. Never freed: threads are few.
/// Each on a cache line of its own: threads write their counts on every allocation.
#[repr(align(128))]
struct Slot {
    bytes: AtomicIsize,
    next: *const Slot,
}

static SLOTS: AtomicPtr<Slot> = AtomicPtr::new(ptr::null_mut());

thread_local! {
    static MINE: Cell<*const Slot> = const { Cell::new(ptr::null()) };
}

/// This thread's slot, created (outside the count) on first use.
fn my_slot() -> Option<&'static Slot> {
    let p = MINE.try_with(|c| c.get()).ok()?;
    if !p.is_null() {
        // SAFETY: slots are never freed.
        return Some(unsafe { &*p });
    }
    let layout = Layout::new::<Slot>();
    // SAFETY: a plain allocation of a Slot, initialised before use and never freed.
    let slot = unsafe { Jemalloc.alloc(layout) } as *mut Slot;
    if slot.is_null() {
        return None;
    }
    let mut head = SLOTS.load(Relaxed);
    loop {
        // SAFETY: `slot` is valid for writes; it is published only by the exchange below.
        unsafe {
            slot.write(Slot {
                bytes: AtomicIsize::new(0),
                next: head,
            })
        };
        match SLOTS.compare_exchange_weak(head, slot, Release, Relaxed) {
            Ok(_) => break,
            Err(now) => head = now,
        }
    }
    let _ = MINE.try_with(|c| c.set(slot));
    // SAFETY: just initialised, never freed.
    Some(unsafe { &*slot })
}

/// Adds `delta` bytes to this thread's count.
#[inline]
fn count(delta: isize) {
    if let Some(slot) = my_slot() {
        // Only this thread writes its slot: no read-modify-write needed.
        slot.bytes.store(slot.bytes.load(Relaxed) + delta, Relaxed);
    }
}

/// Bytes currently allocated.
pub fn used() -> usize {
    let mut total = 0isize;
    let mut p = SLOTS.load(std::sync::atomic::Ordering::Acquire) as *const Slot;
    while !p.is_null() {
        // SAFETY: slots are never freed and are fully written before being published.
        let slot = unsafe { &*p };
        total += slot.bytes.load(Relaxed);
        p = slot.next;
    }
    total.max(0) as usize
}

/// The size class jemalloc serves `layout` from: 8, then steps of 16 up to 128, then four
/// classes per doubling (jemalloc's default size classes), computed without a call; unusual
/// alignments ask jemalloc.
#[inline]
fn class_size(layout: Layout) -> isize {
    let size = layout.size().max(1);
    if layout.align() > 16 || layout.align() > size {
        // SAFETY: nallocx only computes a size.
        return unsafe {
            tikv_jemalloc_sys::nallocx(size, tikv_jemalloc_sys::MALLOCX_ALIGN(layout.align()))
                as isize
        };
    }
    let class = if size <= 8 {
        8
    } else if size <= 128 {
        (size + 15) & !15
    } else {
        let lg = usize::BITS - (size - 1).leading_zeros();
        let delta = 1usize << (lg - 3);
        (size + delta - 1) & !(delta - 1)
    };
    class as isize
}

pub struct CountingJemalloc;

// SAFETY: every call is forwarded to jemalloc unchanged; the counter only observes.
unsafe impl GlobalAlloc for CountingJemalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Jemalloc.alloc(layout) };
        if !p.is_null() {
            count(class_size(layout));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Jemalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            count(class_size(layout));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-class_size(layout));
        unsafe { Jemalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { Jemalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let new = Layout::from_size_align(new_size, layout.align()).unwrap_or(layout);
            count(class_size(new) - class_size(layout));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    /// This thread's own count (other tests allocate concurrently; the total would race).
    fn mine() -> isize {
        super::my_slot().map_or(0, |s| s.bytes.load(super::Relaxed))
    }

    #[test]
    fn size_classes_match_jemalloc() {
        for size in (1..20_000).chain([65_536, 100_000, 1 << 20, 3 << 20]) {
            let layout = std::alloc::Layout::from_size_align(size, 8).unwrap();
            // SAFETY: nallocx only computes a size.
            let expected = unsafe { tikv_jemalloc_sys::nallocx(size, 0) } as isize;
            assert_eq!(super::class_size(layout), expected, "size {size}");
        }
    }

    #[test]
    fn allocations_are_counted_per_thread_and_summed() {
        let before = mine();
        let big: Vec<u8> = vec![1; 1 << 20];
        assert!(mine() >= before + (1 << 20));
        assert!(super::used() >= 1 << 20);
        // Freed on another thread: that thread's cell goes down by as much.
        let t = std::thread::spawn(move || {
            let start = mine();
            drop(big);
            mine() - start
        });
        assert!(t.join().unwrap() <= -(1 << 20));
    }
}
