//! gmc scraping a live target: `up`, report series, and staleness when series vanish.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{eventually, Gmc};

/// A one-thread HTTP server answering every request with the current exposition.
fn exposition_server(body: Arc<Mutex<Option<String>>>) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = c.read(&mut buf);
            let current = body.lock().unwrap().clone();
            let resp = match current {
                Some(b) => format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    b.len(),
                    b
                ),
                None => "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
            };
            let _ = c.write_all(resp.as_bytes());
        }
    });
    addr
}

#[test]
fn scrape_reports_up_and_marks_vanished_series_stale() {
    let body = Arc::new(Mutex::new(Some(
        "# TYPE md_msgs_total counter\nmd_msgs_total{feed=\"a\"} 5\nmd_msgs_total{feed=\"b\"} 7\n"
            .to_owned(),
    )));
    let target = exposition_server(body.clone());
    let g = Gmc::start_with_config(&format!(
        "[[scrape_configs]]\njob_name = \"md\"\nscrape_interval = \"200ms\"\n\
         [[scrape_configs.static_configs]]\ntargets = [\"{target}\"]\nlabels = {{ desk = \"eq\" }}\n"
    ));
    let v = eventually(Duration::from_secs(20), || {
        let (code, v) = g.get_json("/metrics/md");
        (code == 200 && v["series"].as_array()?.len() >= 6).then_some(v)
    })
    .expect("scraped series never appeared");
    let series = v["series"].as_array().unwrap();
    let get = |m: &str, feed: Option<&str>| {
        series
            .iter()
            .find(|s| s["metric"] == m && feed.is_none_or(|f| s["labels"]["feed"] == f))
            .cloned()
    };
    assert_eq!(get("up", None).expect("up")["value"], 1.0);
    assert_eq!(
        get("md_msgs_total", Some("a")).expect("a")["labels"]["desk"],
        "eq"
    );
    assert_eq!(get("md_msgs_total", Some("b")).expect("b")["value"], 7.0);
    assert!(get("scrape_duration_seconds", None).is_some());
    assert_eq!(get("scrape_samples_scraped", None).unwrap()["value"], 2.0);

    // Series b disappears: its latest sample becomes a stale marker, so it is no longer live.
    *body.lock().unwrap() = Some("md_msgs_total{feed=\"a\"} 6\n".to_owned());
    eventually(Duration::from_secs(20), || {
        let (_, v) = g.get_json("/metrics/md");
        let s = v["series"].as_array()?;
        let has_b = s
            .iter()
            .any(|x| x["metric"] == "md_msgs_total" && x["labels"]["feed"] == "b");
        (!has_b).then_some(())
    })
    .expect("vanished series was not marked stale");

    // Target fails: up = 0 and the status API says why.
    *body.lock().unwrap() = None;
    eventually(Duration::from_secs(20), || {
        let (_, v) = g.get_json("/metrics/md");
        let up = v["series"]
            .as_array()?
            .iter()
            .find(|s| s["metric"] == "up")?
            .clone();
        (up["value"] == 0.0).then_some(())
    })
    .expect("up never went to 0");
    let (_, st) = g.get_json("/system/status");
    let t = &st["scrape_targets"][0];
    assert_eq!(t["up"], false, "{st}");
    assert!(
        t["last_error"].as_str().unwrap_or("").contains("500"),
        "{st}"
    );
}
