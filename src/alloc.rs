//! The process allocator: jemalloc, with a running count of the bytes it has handed out
//! (each allocation counted at its jemalloc size class, as Redis's zmalloc counts usable
//! sizes). The count is exact at every instant, unlike jemalloc's own statistics, which see a
//! thread's freed memory only once its cache is returned; `used_memory` and maxmemory
//! eviction read it.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use tikv_jemallocator::Jemalloc;

static USED: AtomicUsize = AtomicUsize::new(0);

/// Bytes currently allocated.
pub fn used() -> usize {
    USED.load(Relaxed)
}

/// The size class jemalloc serves `layout` from.
fn class_size(layout: Layout) -> usize {
    let flags = if layout.align() <= 16 && layout.align() <= layout.size() {
        0
    } else {
        tikv_jemalloc_sys::MALLOCX_ALIGN(layout.align())
    };
    // SAFETY: nallocx only computes a size; a zero size is never passed (GlobalAlloc callers
    // never ask for zero bytes).
    unsafe { tikv_jemalloc_sys::nallocx(layout.size().max(1), flags) }
}

pub struct CountingJemalloc;

// SAFETY: every call is forwarded to jemalloc unchanged; the counter only observes.
unsafe impl GlobalAlloc for CountingJemalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Jemalloc.alloc(layout) };
        if !p.is_null() {
            USED.fetch_add(class_size(layout), Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Jemalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            USED.fetch_add(class_size(layout), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        USED.fetch_sub(class_size(layout), Relaxed);
        unsafe { Jemalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { Jemalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let new = Layout::from_size_align(new_size, layout.align()).unwrap_or(layout);
            let (old, new) = (class_size(layout), class_size(new));
            if new >= old {
                USED.fetch_add(new - old, Relaxed);
            } else {
                USED.fetch_sub(old - new, Relaxed);
            }
        }
        p
    }
}
