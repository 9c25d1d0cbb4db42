//! Target discovery: static lists and Prometheus' file_sd JSON files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::ScrapeConfig;
use crate::scrape::Target;

#[derive(Debug, Deserialize)]
struct FileSdGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// The current target set of `sc`. An unreadable or invalid file is logged and its last
/// good contents are kept (`cache`), as Prometheus does: a half-written discovery file
/// must not make every target look gone.
pub(crate) async fn targets(
    sc: &ScrapeConfig,
    cache: &mut HashMap<PathBuf, Vec<Target>>,
) -> HashSet<Target> {
    let mut out = HashSet::new();
    for st in &sc.static_configs {
        for addr in &st.targets {
            out.insert(Target::new(sc, addr, &st.labels));
        }
    }
    for f in &sc.file_sd_configs {
        for path in &f.files {
            let text = match tokio::fs::read_to_string(path).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "Cannot read file_sd file; keeping its last targets.");
                    out.extend(cache.get(path).into_iter().flatten().cloned());
                    continue;
                }
            };
            match serde_json::from_str::<Vec<FileSdGroup>>(&text) {
                Ok(groups) => {
                    let mut found = Vec::new();
                    for g in groups {
                        for addr in &g.targets {
                            if addr.is_empty() || addr.contains('/') {
                                tracing::warn!(file = %path.display(), target = %addr, "Skipping invalid file_sd target.");
                                continue;
                            }
                            found.push(Target::new(sc, addr, &g.labels));
                        }
                    }
                    out.extend(found.iter().cloned());
                    cache.insert(path.clone(), found);
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), line = e.line(), error = %e, "Invalid file_sd file; keeping its last targets.");
                    out.extend(cache.get(path).into_iter().flatten().cloned());
                }
            }
        }
    }
    out
}
