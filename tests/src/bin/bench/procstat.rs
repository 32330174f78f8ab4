//! CPU time of processes, read from /proc (proc(5): `/proc/<pid>/stat`
//! utime and stime); peak memory is `distans_e2e::Process::peak_rss_kib`.

use std::collections::BTreeMap;
use std::time::Instant;

/// Clock ticks per second of utime and stime (`getconf CLK_TCK`; 100 when
/// it cannot be read, Linux's value on every architecture distans runs on).
pub fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of process `pid`, all its threads, in clock ticks; `None`
/// when it has exited.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15; fields[0] is field 3 (the state).
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The processes whose CPU a stage counts, each under a name.
#[derive(Debug, Clone)]
pub struct Watched {
    processes: Vec<(String, u32)>,
    ticks_per_second: f64,
}

impl Watched {
    /// The bench's own process (`bench`: the raw consumer and the producer run in it).
    pub fn bench() -> Watched {
        Watched { processes: vec![("bench".into(), std::process::id())], ticks_per_second: ticks_per_second() }
    }

    /// These processes and `pid` as `name`.
    pub fn with(&self, name: &str, pid: Option<u32>) -> Watched {
        let mut watched = self.clone();
        watched.processes.extend(pid.map(|pid| (name.to_string(), pid)));
        watched
    }

    pub fn sample(&self) -> Sample {
        let ticks = self.processes.iter().filter_map(|(name, pid)| Some((name.clone(), cpu_ticks(*pid)?))).collect();
        Sample { at: Instant::now(), ticks, ticks_per_second: self.ticks_per_second }
    }
}

/// The CPU ticks of the watched processes at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    ticks: BTreeMap<String, u64>,
    ticks_per_second: f64,
}

impl Sample {
    /// Seconds from this sample to `later`.
    pub fn seconds_until(&self, later: &Sample) -> f64 {
        later.at.duration_since(self.at).as_secs_f64()
    }

    /// CPU seconds each process used from this sample to `later` (the
    /// processes in both), at the resolution of a clock tick (10 ms).
    pub fn cpu_until(&self, later: &Sample) -> BTreeMap<String, f64> {
        self.ticks
            .iter()
            .filter_map(|(name, before)| {
                let after = later.ticks.get(name)?;
                Some((name.clone(), after.saturating_sub(*before) as f64 / self.ticks_per_second))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time() {
        let pid = std::process::id();
        let before = cpu_ticks(pid).expect("own stat");
        let mut x = 0u64;
        let started = Instant::now();
        while started.elapsed().as_millis() < 200 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(cpu_ticks(pid).expect("own stat") > before, "200 ms of spinning counts ticks");
        assert_eq!(cpu_ticks(u32::MAX), None);
    }
}
