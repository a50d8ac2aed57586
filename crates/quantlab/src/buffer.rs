//! Output buffers for large results, laid out so that Linux can back them
//! with 2 MiB pages.
//!
//! A large fresh output is not free: the operating system zeroes every page
//! on first touch, and on the machine measured that took as long as the cast
//! that fills it (a 32 MiB output: 2.2 ms; the f32 to bf16 cast into it:
//! 2.2 ms). With 4 KiB pages it is far worse (14 ms: a fault every 4 KiB), so
//! transparent huge pages are asked for, as numpy does for its arrays. Two
//! details decide how much of a buffer gets them:
//!
//! - glibc serves a large allocation from its own `mmap`, and Linux aligns a
//!   mapping to 2 MiB only when its length is a multiple of 2 MiB; so the
//!   capacity is rounded up to make it one (the extra is address space only,
//!   never touched). Otherwise the unaligned ends, up to 2 MiB of the
//!   buffer, stay in 4 KiB pages.
//! - glibc writes its 16-byte header at the start of that mapping, so the
//!   first 2 MiB page is already split into 4 KiB pages by the time it is
//!   handed out; `MADV_COLLAPSE` makes it one huge page again.
//!
//! Together: 32 MiB fresh and filled in 1.45 ms instead of 2.2. Every step is
//! a hint: with another allocator or OS the buffers are just ordinary.

use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
use std::mem::MaybeUninit;

/// Types whose all-zero bit pattern is a valid value (zero).
///
/// # Safety
/// Implement only for types for which that is true.
pub(crate) unsafe trait ZeroBits: Copy {}
// SAFETY: plain integers and IEEE floats: all-zero bits are 0 and +0.0.
unsafe impl ZeroBits for u8 {}
// SAFETY: as above.
unsafe impl ZeroBits for u16 {}
// SAFETY: as above.
unsafe impl ZeroBits for f32 {}

/// The 2 MiB page size of x86_64 and of aarch64 with 4 KiB base pages.
const HUGE: usize = 2 << 20;
/// Buffers below this are left alone: few faults, and glibc may serve them
/// from its heap, where rounding up would only waste memory.
const LARGE: usize = 4 * HUGE;
/// What glibc adds to a request before mapping it (header and rounding).
const MALLOC_OVERHEAD: usize = 32;

/// `n` zeros, from the allocator's zeroed memory: fresh pages come zeroed
/// from the OS, so unlike `vec![x; n]` nothing is written here.
pub(crate) fn zeroed<T: ZeroBits>(n: usize) -> Vec<T> {
    let cap = capacity::<T>(n);
    let layout = Layout::array::<T>(cap).expect("a buffer that fits in memory");
    if layout.size() == 0 {
        return vec![];
    }
    // SAFETY: the layout has a nonzero size.
    let ptr = unsafe { alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        handle_alloc_error(layout);
    }
    // SAFETY: allocated by the global allocator with `Layout::array::<T>(cap)`,
    // as `Vec` frees it; n <= cap values, all zero bits, which `ZeroBits` says are valid.
    let mut v = unsafe { Vec::from_raw_parts(ptr, n, cap) };
    advise_huge_pages(v.as_mut_ptr() as usize, n * size_of::<T>());
    v
}

/// `n` values written by `fill`, without zeroing them first (a whole extra
/// pass over memory for kernels that write every element).
///
/// # Safety
/// `fill` must write every element of the slice it is given.
pub(crate) unsafe fn filled<T>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    // SAFETY: passed on to the caller.
    let filled = unsafe {
        try_filled::<T, ()>(n, |out| {
            fill(out);
            Ok(())
        })
    };
    filled.unwrap_or_default()
}

/// [`filled`] for a `fill` that can fail; on failure the partly written
/// buffer is dropped, never read.
///
/// # Safety
/// When `fill` returns `Ok`, it must have written every element of its slice.
pub(crate) unsafe fn try_filled<T, E>(
    n: usize,
    fill: impl FnOnce(&mut [MaybeUninit<T>]) -> Result<(), E>,
) -> Result<Vec<T>, E> {
    let mut v = Vec::with_capacity(capacity::<T>(n));
    advise_huge_pages(v.as_mut_ptr() as usize, n * size_of::<T>());
    fill(&mut v.spare_capacity_mut()[..n])?;
    // SAFETY: the capacity is at least n, and `fill` succeeded, so (by the
    // caller's promise) it wrote all n elements.
    unsafe { v.set_len(n) };
    Ok(v)
}

/// The capacity to ask for `n` values: for a large buffer, enough that
/// glibc's mapping is a whole number of huge pages (see the module documentation).
fn capacity<T>(n: usize) -> usize {
    let size = size_of::<T>().max(1);
    let bytes = n.saturating_mul(size);
    if bytes < LARGE || !cfg!(target_os = "linux") {
        return n;
    }
    n.max(((bytes + MALLOC_OVERHEAD).next_multiple_of(HUGE) - MALLOC_OVERHEAD) / size)
}

/// Asks Linux to back the `len` bytes at `start`, not yet touched, with huge
/// pages (see the module documentation). Only a hint: a failure (or another
/// OS) changes nothing but speed.
fn advise_huge_pages(start: usize, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const MADV_HUGEPAGE: i32 = 14;
        const MADV_COLLAPSE: i32 = 25;
        /// A buffer that starts this close after a huge page boundary (past
        /// the allocator's header) gets that whole page.
        const HEADER_PAGE: usize = 4096;
        unsafe extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
        }
        if len < LARGE {
            return;
        }
        let page_start = start / HUGE * HUGE;
        let own_first_page = start - page_start <= HEADER_PAGE;
        let first = if own_first_page { page_start } else { start.next_multiple_of(HUGE) };
        let end = (start + len) / HUGE * HUGE;
        if end <= first {
            return;
        }
        // SAFETY: (both calls) madvise never changes memory contents with
        // these advices, only how pages are backed; [first, end) is the
        // buffer, plus at most the allocator's header before it, which lies
        // in the same mapping.
        unsafe {
            madvise(first as *mut std::ffi::c_void, end - first, MADV_HUGEPAGE);
            if own_first_page && page_start < start {
                madvise(page_start as *mut std::ffi::c_void, HUGE, MADV_COLLAPSE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_hold_what_was_asked() {
        for n in [0, 1, 1000, LARGE / 4 - 1, LARGE / 4, 3 * LARGE / 4 + 5] {
            let z = zeroed::<f32>(n);
            assert_eq!(z.len(), n);
            assert!(z.iter().all(|&v| v.to_bits() == 0));
            // SAFETY: the closure writes every element.
            let f =
                unsafe { filled::<u16>(n, |out| out.iter_mut().enumerate().for_each(|(i, o)| _ = o.write(i as u16))) };
            assert!(f.iter().enumerate().all(|(i, &v)| v == i as u16));
        }
        // A failing fill returns its error.
        // SAFETY: on Ok every element is written (it never is Ok here).
        let r = unsafe { try_filled::<u8, &str>(10, |_| Err("no")) };
        assert_eq!(r, Err("no"));
    }

    #[test]
    fn large_capacities_fill_whole_huge_pages_with_the_header() {
        let n = (32 << 20) / 2;
        let cap = capacity::<u16>(n);
        assert!(cap >= n);
        if cfg!(target_os = "linux") {
            assert_eq!((cap * 2 + MALLOC_OVERHEAD) % HUGE, 0);
            assert!(cap * 2 - n * 2 < HUGE);
        }
        assert_eq!(capacity::<u8>(100), 100);
    }
}
