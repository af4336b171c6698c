//! The run queue (Stackless's circular list of runnable tasklets) and the list of a thread's
//! live tasklets, as types. Both are intrusive (links live in the tasklets) and owner-thread only.
//!
//! Run queue: `head` is the tasklet that runs (or runs next); the queue is circular through
//! `next`/`prev`; "append" inserts just before `head`. Whenever user code runs, the running
//! tasklet is `head` (or it is main inside slp_run, which is not in the queue).

use std::cell::Cell;
use std::ptr;

use crate::tasklet::Tasklet;

pub struct RunQueue {
    head: Cell<*mut Tasklet>,
    len: Cell<i32>,
}

impl RunQueue {
    pub const fn new() -> RunQueue {
        RunQueue { head: Cell::new(ptr::null_mut()), len: Cell::new(0) }
    }

    /// The tasklet that runs (or runs next); null when the queue is empty.
    #[inline]
    pub fn head(&self) -> *mut Tasklet {
        self.head.get()
    }
    /// Makes `t` (linked) the head: it runs next; the order around the ring is unchanged.
    #[inline]
    pub fn set_head(&self, t: *mut Tasklet) {
        self.head.set(t)
    }
    #[inline]
    pub fn len(&self) -> i32 {
        self.len.get()
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head.get().is_null()
    }

    /// Is `t` linked into this queue?
    ///
    /// # Safety
    /// `t` is a live tasklet of this thread.
    #[inline]
    pub unsafe fn contains(&self, t: *const Tasklet) -> bool {
        !(*t).next.get().is_null()
    }

    /// Inserts `t` before `pos` (or as the only element when `pos` is null).
    ///
    /// # Safety
    /// `t` is a live tasklet of this thread, not linked; `pos` is linked or null (only when
    /// the queue is empty).
    #[inline]
    unsafe fn insert_before(&self, pos: *mut Tasklet, t: *mut Tasklet) {
        if pos.is_null() {
            (*t).next.set(t);
            (*t).prev.set(t);
            self.head.set(t);
        } else {
            let p = (*pos).prev.get();
            (*p).next.set(t);
            (*t).prev.set(p);
            (*t).next.set(pos);
            (*pos).prev.set(t);
        }
        self.len.set(self.len.get() + 1);
    }

    /// Appends `t` at the tail (just before `head`).
    ///
    /// # Safety
    /// As `insert_before`: `t` live, of this thread, not linked.
    #[inline]
    pub unsafe fn append(&self, t: *mut Tasklet) {
        self.insert_before(self.head.get(), t)
    }

    /// Inserts `t` right after `head` (it runs next after the head).
    ///
    /// # Safety
    /// As `append`.
    #[inline]
    pub unsafe fn insert_next(&self, t: *mut Tasklet) {
        let h = self.head.get();
        if h.is_null() {
            self.insert_before(h, t);
        } else {
            self.insert_before((*h).next.get(), t);
        }
    }

    /// Inserts `t` just before the head and makes it the head: it runs next, everything else
    /// keeps its order. A linked `t` moves.
    ///
    /// # Safety
    /// `t` is a live tasklet of this thread.
    pub unsafe fn move_to_front(&self, t: *mut Tasklet) {
        if self.contains(t) {
            if self.head.get() == t {
                return;
            }
            self.unlink(t);
        }
        self.insert_before(self.head.get(), t);
        self.head.set(t);
    }

    /// Unlinks `t`; the head moves on to `t`'s successor if `t` was the head.
    ///
    /// # Safety
    /// `t` is linked into this queue.
    #[inline]
    pub unsafe fn unlink(&self, t: *mut Tasklet) {
        let n = (*t).next.get();
        let p = (*t).prev.get();
        if n == t {
            self.head.set(ptr::null_mut());
        } else {
            (*p).next.set(n);
            (*n).prev.set(p);
            if self.head.get() == t {
                self.head.set(n);
            }
        }
        (*t).next.set(ptr::null_mut());
        (*t).prev.set(ptr::null_mut());
        self.len.set(self.len.get() - 1);
    }

    /// The linked tasklets from the head on, in order.
    ///
    /// # Safety
    /// The queue is not changed while the iterator is used.
    pub unsafe fn iter(&self) -> impl Iterator<Item = *mut Tasklet> + '_ {
        let h = self.head.get();
        let mut t = h;
        let mut done = h.is_null();
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let cur = t;
            // SAFETY: linked tasklets are live (caller's contract).
            t = unsafe { (*t).next.get() };
            done = t == h;
            Some(cur)
        })
    }
}

impl Default for RunQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for TaskletList {
    fn default() -> Self {
        Self::new()
    }
}

/// Every live tasklet of a thread but its main tasklet, from creation to death, whatever its
/// state (intrusive through `all_next`/`all_prev`: no allocation): for thread exit and dumps.
pub struct TaskletList {
    first: Cell<*mut Tasklet>,
}

impl TaskletList {
    pub const fn new() -> TaskletList {
        TaskletList { first: Cell::new(ptr::null_mut()) }
    }

    /// # Safety
    /// `t` is a live tasklet of this thread, not in the list.
    pub unsafe fn push(&self, t: *mut Tasklet) {
        (*t).listed_in.set(self as *const TaskletList as usize);
        let h = self.first.get();
        (*t).all_prev.set(ptr::null_mut());
        (*t).all_next.set(h);
        if !h.is_null() {
            (*h).all_prev.set(t);
        }
        self.first.set(t);
    }

    /// # Safety
    /// `t` is in the list.
    pub unsafe fn remove(&self, t: *mut Tasklet) {
        let n = (*t).all_next.get();
        let p = (*t).all_prev.get();
        if !n.is_null() {
            (*n).all_prev.set(p);
        }
        if p.is_null() {
            self.first.set(n);
        } else {
            (*p).all_next.set(n);
        }
        (*t).all_next.set(ptr::null_mut());
        (*t).all_prev.set(ptr::null_mut());
        (*t).listed_in.set(0);
    }

    pub fn first(&self) -> *mut Tasklet {
        self.first.get()
    }

    /// Is `t` in this list?
    ///
    /// # Safety
    /// `t` is a live tasklet.
    pub unsafe fn contains(&self, t: *mut Tasklet) -> bool {
        (*t).listed_in.get() == self as *const TaskletList as usize
    }

    /// The tasklets in the list, in order.
    ///
    /// # Safety
    /// The list is not changed while the iterator is used.
    pub unsafe fn iter(&self) -> impl Iterator<Item = *mut Tasklet> + '_ {
        let mut t = self.first.get();
        std::iter::from_fn(move || {
            if t.is_null() {
                return None;
            }
            let cur = t;
            // SAFETY: listed tasklets are live (caller's contract).
            t = unsafe { (*t).all_next.get() };
            Some(cur)
        })
    }
}
