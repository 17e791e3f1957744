//! Installs lol_alloc's free-list allocator as the global allocator of a wasm32 build that
//! depends on this crate (the login script: a sign-in allocates little, and the allocator is a
//! tenth of dlmalloc's size). Freed blocks are reused, so the memory the sliced argon2 takes is
//! given back to the next computation. The wasm runs one thread.
#![no_std]

#[cfg(target_arch = "wasm32")]
#[global_allocator]
// SAFETY: the wasm these builds make runs on one thread (no shared memory, no atomics).
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };
