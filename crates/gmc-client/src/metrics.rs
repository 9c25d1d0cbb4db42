//! Names of gmc-client's own metrics (about itself: overflow, push, process).

/// Lookups folded into an `__overflow__` series, by metric.
pub const LABEL_OVERFLOW: &str = "gmc_client_label_overflow_total";
/// Help of [`LABEL_OVERFLOW`].
pub const LABEL_OVERFLOW_HELP: &str =
    "Dynamic-label lookups folded into the __overflow__ series past the cardinality cap.";
/// Label naming the metric whose cap was hit.
pub const LABEL_METRIC: &str = "metric";

/// Batches sent to the receiver.
pub const PUSH_SENT: &str = "gmc_client_push_sent_batches_total";
/// Batches dropped because the buffer was full (receiver unreachable).
pub const PUSH_DROPPED: &str = "gmc_client_push_dropped_batches_total";
/// Samples in dropped batches.
pub const PUSH_DROPPED_SAMPLES: &str = "gmc_client_push_dropped_samples_total";
/// Failed send attempts.
pub const PUSH_ERRORS: &str = "gmc_client_push_errors_total";
/// Batches waiting in the buffer.
pub const PUSH_QUEUED: &str = "gmc_client_push_queued_batches";

/// Process CPU time.
pub const PROCESS_CPU: &str = "process_cpu_seconds_total";
/// Resident memory.
pub const PROCESS_RSS: &str = "process_resident_memory_bytes";
/// Virtual memory.
pub const PROCESS_VSZ: &str = "process_virtual_memory_bytes";
/// OS threads.
pub const PROCESS_THREADS: &str = "process_threads";
/// Open file descriptors.
pub const PROCESS_FDS: &str = "process_open_fds";
/// File descriptor limit.
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
/// Start time.
pub const PROCESS_START: &str = "process_start_time_seconds";
