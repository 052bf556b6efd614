//! Instructions counted with SysTick, deterministically under QEMU.
//!
//! SysTick counts the core clock. Under QEMU with `-icount shift=0` (the runners in
//! `.cargo/config.toml` pass it) the virtual clock advances exactly 1 ns per instruction
//! executed, so SysTick counts instructions: one tick is `1e9 / CORE_HZ` instructions (40 at the
//! MPS2 board's 25 MHz, 62.5 at the micro:bit's 16 MHz), and the same program gives the same
//! count on every run. On a real board the same ticks are core clock cycles.
//!
//! A region is measured with a tick count read before and after; one tick is many
//! instructions, so a figure per call is the mean over many calls in one region, from which
//! the same loop around an empty body is subtracted (the loop and the read of the counter are
//! not the code measured).

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;

/// The core clock of the board QEMU emulates, which SysTick counts: the MPS2 AN386's 25 MHz,
/// the micro:bit's (nRF51822) 16 MHz.
#[cfg(board = "mps2_an386")]
pub const CORE_HZ: u64 = 25_000_000;
/// The core clock of the board QEMU emulates, which SysTick counts: the MPS2 AN386's 25 MHz,
/// the micro:bit's (nRF51822) 16 MHz.
#[cfg(board = "microbit")]
pub const CORE_HZ: u64 = 16_000_000;

/// SysTick's 24-bit reload value: the counter runs from it down to 0, then wraps.
const RELOAD: u32 = 0x00FF_FFFF;

/// Wraps of SysTick since [`InstructionClock::start`], counted by its exception.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Only this handler writes `WRAPS` (a load and a store: thumbv6m has no atomic add).
    WRAPS.store(WRAPS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// SysTick running from the core clock, its wraps counted: a 64-bit count of ticks.
pub struct InstructionClock {
    _syst: SYST,
}

impl InstructionClock {
    /// Starts SysTick from the core clock (takes the core peripherals, so call it once).
    pub fn start() -> InstructionClock {
        let Some(peripherals) = cortex_m::Peripherals::take() else {
            panic!("the core peripherals were already taken");
        };
        let mut syst = peripherals.SYST;
        syst.disable_counter();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        // The first tick after the clear loads the reload value without counting a wrap.
        while SYST::get_current() == 0 {}
        InstructionClock { _syst: syst }
    }

    /// Ticks since some point after [`start`](Self::start).
    #[inline(never)]
    pub fn ticks(&self) -> u64 {
        loop {
            let wraps = WRAPS.load(Ordering::Relaxed);
            let current = SYST::get_current();
            // A wrap in between (its exception ran): read again.
            if WRAPS.load(Ordering::Relaxed) == wraps {
                return wraps as u64 * (RELOAD as u64 + 1) + (RELOAD - current) as u64;
            }
        }
    }

    /// The mean instructions of `body(i)` over `i` in `0..n`: the ticks of a loop of `n` calls
    /// less those of the same loop calling `empty(i)`, which should do everything `body` does
    /// except the work measured (compute the same input, say).
    pub fn mean_instructions(
        &self,
        n: u32,
        body: &mut dyn FnMut(u32),
        empty: &mut dyn FnMut(u32),
    ) -> Instructions {
        let work = self.loop_ticks(n, body);
        let overhead = self.loop_ticks(n, empty);
        Instructions::from_ticks(work.saturating_sub(overhead), n)
    }

    /// Ticks of `n` calls of `body`, through the same (not inlined) loop for every body.
    #[inline(never)]
    fn loop_ticks(&self, n: u32, body: &mut dyn FnMut(u32)) -> u64 {
        let start = self.ticks();
        for i in 0..n {
            body(core::hint::black_box(i));
        }
        self.ticks() - start
    }

    /// The mean ticks of an empty region (two reads of [`ticks`](Self::ticks)), over `n`, as
    /// a total for `n` regions: subtract it from `n` measured regions.
    pub fn region_overhead(&self, n: u32) -> u64 {
        let mut total = 0;
        for _ in 0..n {
            let start = self.ticks();
            total += self.ticks() - start;
        }
        total
    }
}

/// A mean count of instructions under QEMU `-icount shift=0` (of core cycles on a board), in
/// tenths, from SysTick ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instructions {
    tenths: u64,
}

impl Instructions {
    /// `ticks` over `n` calls: one tick is `1e9 / CORE_HZ` instructions.
    pub fn from_ticks(ticks: u64, n: u32) -> Instructions {
        let tenths = ticks * 10 * 1_000_000_000 / CORE_HZ;
        Instructions {
            tenths: (tenths + n as u64 / 2) / n as u64,
        }
    }

    /// Rounded to a whole number.
    pub fn rounded(self) -> u64 {
        (self.tenths + 5) / 10
    }
}

/// `3663.4`.
impl core::fmt::Display for Instructions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.tenths / 10, self.tenths % 10)
    }
}
