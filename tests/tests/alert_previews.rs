//! The alerts as people see them, in headless Chromium: the Teams messages
//! through Microsoft's Adaptive Cards renderer (npm `adaptivecards`, with
//! markdown-it for the Markdown Teams renders in a card's text) and the
//! Slack messages through a Block Kit preview of our own (Slack has no
//! offline renderer: header, `mrkdwn` with bold, line breaks, links and
//! mentions, fields in two columns, buttons). Each message must render (its
//! texts in the DOM, no renderer or validation error), and hostile provider
//! names must arrive harmless: no link or mention made of them, no control
//! character left. With `DISTANS_REPORT_SCREENSHOT_DIR` set, the pages and
//! their screenshots are copied there to be looked at.

use std::path::Path;

use distans_domain::rules::{Finding, FindingStatus, Rule, Withdrawal, CONTACT_BURST, DOUBLE_INVOICING, WRONG_PRICE};
use distans_domain::testing;
use distans_domain::text::Language;
use distans_notifier::summary::{Backlog, Summary};
use distans_notifier::{Digest, Format, Messages};
use distans_wire::TimedFinding;
use serde_json::Value;

/// A provider name no message may act on: a Slack mention, a Markdown link,
/// a terminal escape sequence and a right-to-left override.
const HOSTILE: &str = "<!channel> [Klicka här](https://evil.example) \u{1b}]0;titel\u{7}Vård\u{202E}BA";

fn timed(rule: &Rule, key: &str, provider: &str, amount_ore: i64) -> TimedFinding {
    let finding = Finding {
        amount_at_stake_ore: amount_ore,
        provider_name: provider.to_string(),
        patient_pseudonym: Some("3f2a9c0d4e5b6a7c8d9e0f1a2b3c4d5e".into()),
        ..testing::finding(rule, key)
    };
    TimedFinding { finding, detected_at_ms: 1_740_000_000_000 }
}

fn messages(format: Format, language: Language) -> Messages {
    let mut m = Messages::new(format, language);
    m.dashboard = Some("https://grafana.region.example/d/distans-overview".parse().expect("url"));
    m.regions.insert("2321000230".into(), "Region Jämtland Härjedalen".into());
    m
}

/// The messages to look at: a finding, a digest and a withdrawal in
/// Swedish, a finding in English, a finding from a hostile name, and a
/// first start's summary in Swedish.
fn bodies(format: Format) -> Vec<Value> {
    let sv = messages(format, Language::Swedish);
    let price = timed(&WRONG_PRICE, "ZVF23210001152503000042:1", "Nordvård Digital AB", 123_450);
    let mut digest = Digest::new(&price, "2025-03-10".parse().expect("date"));
    for (i, amount) in [(1, 123_450), (2, 15_000), (3, 70_000)] {
        digest.add(&timed(&WRONG_PRICE, &format!("ZVF23210001152503000042:{i}"), "Nordvård Digital AB", amount));
    }
    let mut gone = timed(&DOUBLE_INVOICING, "ZVF23210001152503000050:1", "Nordvård Digital AB", 50_000);
    gone.finding.status = FindingStatus::Withdrawn(Withdrawal::Credited);
    vec![
        sv.finding(&price),
        sv.digest(&digest),
        sv.withdrawal(&gone),
        messages(format, Language::English).finding(&timed(&CONTACT_BURST, "ZVF1:1", "Kry Vård AB", 42_500)),
        sv.finding(&timed(&WRONG_PRICE, "ZVF1:9", HOSTILE, 50_000)),
        sv.summary(&first_start_summary()),
    ]
}

/// A first start's backlog: 14 wrong prices, 5 doubles, 3 bursts and a
/// credited double (withdrawn, not counted).
fn first_start_summary() -> Summary {
    let mut backlog = Backlog::default();
    for i in 1..=14 {
        let mut t = timed(&WRONG_PRICE, &format!("ZVF23210001152503000042:{i}"), "Nordvård Digital AB", 15_000);
        t.finding.visit_date = chrono::NaiveDate::from_ymd_opt(2025, 1, i).expect("date");
        backlog.add(t);
    }
    for i in 1..=5 {
        backlog.add(timed(&DOUBLE_INVOICING, &format!("ZVF23210001152503000050:{i}"), "Kry Vård AB", 50_000));
    }
    for i in 1..=3 {
        backlog.add(timed(&CONTACT_BURST, &format!("ZVF1:{i}"), "Kry Vård AB", 42_500));
    }
    let mut gone = timed(&DOUBLE_INVOICING, "ZVF23210001152503000050:9", "Kry Vård AB", 50_000);
    gone.finding.status = FindingStatus::Withdrawn(Withdrawal::Credited);
    backlog.add(gone);
    backlog.summary()
}

/// JSON that can sit inside a `<script>` element.
fn script_json(value: &Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

const PAGE_STYLE: &str = "body{font-family:'Segoe UI',system-ui,sans-serif;background:#f0f0f0;margin:16px;width:640px}\
    .message{background:#fff;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.2);margin:0 0 16px;padding:4px}";

/// A page that renders every Teams body with the Adaptive Cards renderer.
fn teams_page(dir: &Path, bodies: &[Value]) -> String {
    let modules = dir.join("node_modules");
    format!(
        "<!DOCTYPE html><html lang=\"sv\"><head><meta charset=\"utf-8\"><style>{PAGE_STYLE}</style>\
         <script src=\"file://{md}\"></script><script src=\"file://{ac}\"></script></head><body><script>\
         const bodies = {json};\
         const md = window.markdownit();\
         AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {{ result.outputHtml = md.render(text); result.didProcess = true; }};\
         bodies.forEach((body, i) => {{\
           const div = document.createElement('div'); div.className = 'message'; div.id = 'message-' + i;\
           document.body.appendChild(div);\
           try {{\
             if (body.type !== 'message') throw new Error('not a Workflows message: ' + body.type);\
             const attachment = body.attachments[0];\
             if (attachment.contentType !== 'application/vnd.microsoft.card.adaptive') throw new Error(attachment.contentType);\
             const card = new AdaptiveCards.AdaptiveCard();\
             const context = new AdaptiveCards.SerializationContext();\
             card.parse(attachment.content, context);\
             const problems = [];\
             for (let e = 0; e < context.eventCount; e++) problems.push(context.getEventAt(e).message);\
             for (const e of card.validateProperties().validationEvents) problems.push(e.message);\
             const rendered = card.render();\
             if (!rendered) throw new Error('nothing rendered');\
             div.appendChild(rendered);\
             div.setAttribute('data-problems', problems.join(' | '));\
             div.setAttribute('data-rendered', 'yes');\
           }} catch (e) {{ div.setAttribute('data-error', String(e)); }}\
         }});\
         </script></body></html>\n",
        md = modules.join("markdown-it/dist/markdown-it.min.js").display(),
        ac = modules.join("adaptivecards/dist/adaptivecards.min.js").display(),
        json = script_json(&Value::Array(bodies.to_vec())),
    )
}

/// A page that draws every Slack body as Slack lays out Block Kit.
fn slack_page(bodies: &[Value]) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"sv\"><head><meta charset=\"utf-8\"><style>{PAGE_STYLE}\
         .message{{padding:8px 16px;font-size:15px;color:#1d1c1d}}.header{{font-size:18px;font-weight:900;margin:8px 0}}\
         .section{{margin:8px 0;line-height:1.45}}.fields{{display:grid;grid-template-columns:1fr 1fr;gap:8px 16px}}\
         .mention{{background:#f2c744;color:#1d1c1d;border-radius:3px;padding:0 2px}}\
         .button{{display:inline-block;border:1px solid #bbb;border-radius:4px;padding:4px 12px;font-weight:700;color:#1d1c1d;text-decoration:none}}\
         a{{color:#1264a3}}</style></head><body><script>\
         const bodies = {json};\
         const decode = s => {{ const t = document.createElement('textarea'); t.innerHTML = s; return t.value; }};\
         /* Slack's mrkdwn: control sequences in <…>, then *bold*, _italic_, ~strike~, line breaks; the rest is text, already escaped as Slack asks. */\
         const mrkdwn = s => s.replace(/<([^<>]*)>/g, (_, inner) => {{\
             if (inner.startsWith('!') || inner.startsWith('@') || inner.startsWith('#')) return '<span class=\"mention\">@' + inner.slice(1).split('|')[0] + '</span>';\
             const [url, label] = inner.split('|'); return '<a class=\"link\" href=\"' + url + '\">' + (label || url) + '</a>'; }})\
           .replace(/\\*([^*\\n]+)\\*/g, '<b>$1</b>').replace(/_([^_\\n]+)_/g, '<i>$1</i>').replace(/~([^~\\n]+)~/g, '<s>$1</s>')\
           .replace(/\\n/g, '<br>');\
         const text = t => t.type === 'mrkdwn' ? mrkdwn(t.text) : decode(t.text).replace(/[&<>]/g, c => ({{'&':'&amp;','<':'&lt;','>':'&gt;'}})[c]);\
         bodies.forEach((body, i) => {{\
           const div = document.createElement('div'); div.className = 'message'; div.id = 'message-' + i;\
           document.body.appendChild(div);\
           try {{\
             if (typeof body.text !== 'string' || !body.text) throw new Error('no fallback text');\
             if (!Array.isArray(body.blocks) || body.blocks.length > 50) throw new Error('blocks');\
             let html = '';\
             for (const b of body.blocks) {{\
               if (b.type === 'header') {{ if (b.text.type !== 'plain_text' || b.text.text.length > 150) throw new Error('header'); html += '<div class=\"header\">' + text(b.text) + '</div>'; }}\
               else if (b.type === 'section' && b.fields) {{ if (b.fields.length > 10) throw new Error('fields'); html += '<div class=\"section fields\">' + b.fields.map(f => '<div>' + text(f) + '</div>').join('') + '</div>'; }}\
               else if (b.type === 'section') {{ html += '<div class=\"section\">' + text(b.text) + '</div>'; }}\
               else if (b.type === 'actions') {{ html += '<div class=\"section\">' + b.elements.map(e => '<a class=\"button\" href=\"' + e.url + '\">' + text(e.text) + '</a>').join(' ') + '</div>'; }}\
               else throw new Error('unknown block ' + b.type);\
             }}\
             div.innerHTML = html;\
             div.setAttribute('data-rendered', 'yes');\
           }} catch (e) {{ div.setAttribute('data-error', String(e)); }}\
         }});\
         </script></body></html>\n",
        json = script_json(&Value::Array(bodies.to_vec())),
    )
}

/// The `data-…` attributes and the text of message `i` in a dumped DOM.
fn message(dom: &str, i: usize) -> &str {
    let Some(start) = dom.find(&format!("id=\"message-{i}\"")) else { return "" };
    let rest = &dom[start..];
    let end = match rest.find(&format!("id=\"message-{}\"", i + 1)) {
        // Back to the opening of the next message's element.
        Some(next) => rest[..next].rfind("<div").unwrap_or(next),
        None => rest.find("</body>").unwrap_or(rest.len()),
    };
    &rest[..end]
}

fn check_and_keep(name: &str, page: &str, format: Format) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(format!("{name}.html"));
    std::fs::write(&path, page)?;
    let dom = distans_e2e::chromium(&["--dump-dom"], &path)?;
    let shot = dir.path().join(format!("{name}.png"));
    distans_e2e::chromium(&["--window-size=700,2600", &format!("--screenshot={}", shot.display())], &path)?;
    let png = std::fs::read(&shot)?;
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}: a screenshot with content");
    if let Ok(keep) = std::env::var("DISTANS_REPORT_SCREENSHOT_DIR") {
        std::fs::copy(&shot, Path::new(&keep).join(format!("{name}.png")))?;
        std::fs::copy(&path, Path::new(&keep).join(format!("{name}.html")))?;
    }
    let count = bodies(format).len();
    for i in 0..count {
        let m = message(&dom, i);
        assert!(m.contains("data-rendered=\"yes\""), "{name}: message {i} did not render: {m}");
        assert!(!m.contains("data-error"), "{name}: message {i}: {m}");
    }
    Ok(dom)
}

/// Every one of `texts` is in `message`.
fn assert_shows(message: &str, texts: &[&str]) {
    for text in texts {
        assert!(message.contains(text), "{text} in {message}");
    }
}

/// The message from the [`HOSTILE`] name shows `as_text` (the name's
/// markup as plain text), holds no `made` (the markup acted on: `why` says
/// what that would be) and no escape or right-to-left override character.
fn assert_harmless(hostile: &str, as_text: &str, (made, why): (&str, &str)) {
    assert!(hostile.contains(as_text), "shown as text: {hostile}");
    assert!(!hostile.contains(made), "{why}: {hostile}");
    assert!(!hostile.contains('\u{1b}') && !hostile.contains('\u{202E}'), "{hostile}");
}

#[test]
fn teams_cards_render_in_the_adaptive_cards_renderer() -> anyhow::Result<()> {
    let dir = distans_e2e::adaptivecards_dir()?;
    let dom = check_and_keep("teams", &teams_page(&dir, &bodies(Format::Teams)), Format::Teams)?;
    for i in 0..bodies(Format::Teams).len() {
        let m = message(&dom, i);
        assert!(m.contains("data-problems=\"\""), "the renderer found nothing to complain of: {m}");
    }
    let first = message(&dom, 0);
    assert_shows(
        first,
        &[
            "Fel pris hos Nordvård Digital AB",
            "Belopp i fråga",
            "1 234,50 kr",
            "Region Jämtland Härjedalen",
            "Öppna i dashboarden",
        ],
    );
    assert!(message(&dom, 1).contains("3 fynd: Fel pris hos Nordvård Digital AB"));
    assert!(message(&dom, 2).contains("Återkallat: Dubbelfakturering"));
    assert!(message(&dom, 3).contains("Many contacts in a few days at Kry Vård AB"));
    assert_harmless(
        message(&dom, 4),
        "[Klicka här](https://evil.example)",
        ("href=\"https://evil.example", "no link made of a name"),
    );
    assert_shows(
        message(&dom, 5),
        &[
            "Sammanfattning: 22 öppna fynd från före start",
            "5 875 kr",
            "2025-01-01 – 2025-02-14",
            "Per regel",
            "Dubbelfakturering",
            "5 fynd, 2 500 kr",
            "14 fynd, 2 100 kr",
            "Återkallade (ej räknade)",
        ],
    );
    Ok(())
}

#[test]
fn slack_block_kit_renders_in_a_preview() -> anyhow::Result<()> {
    let dom = check_and_keep("slack", &slack_page(&bodies(Format::Slack)), Format::Slack)?;
    let first = message(&dom, 0);
    assert_shows(
        first,
        &["Fel pris hos Nordvård Digital AB", "<b>Belopp i fråga</b>", "1 234,50 kr", "Öppna i dashboarden"],
    );
    assert!(message(&dom, 3).contains("Patient (pseudonym)"), "the rule is about one patient");
    assert!(!first.contains("Patient (pseudonym)"), "the wrong price is not");
    assert_harmless(message(&dom, 4), "&lt;!channel&gt;", ("class=\"mention\"", "nobody pinged"));
    assert_shows(
        message(&dom, 5),
        &[
            "Sammanfattning: 22 öppna fynd från före start",
            "<b>Per regel</b>",
            "<b>Dubbelfakturering</b>: 5 fynd, 2 500 kr",
        ],
    );
    Ok(())
}
