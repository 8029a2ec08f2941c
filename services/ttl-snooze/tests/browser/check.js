// Drives headless Chromium (Debian's /usr/bin/chromium through npm playwright-core) over the
// warning emails and the snooze pages, for tests/browser/mod.rs.
//
// Usage: node check.js PLAN.json   (the plan is written by the Rust test)
// Plan: { playwright: "<path of playwright-core>", chromium: "/usr/bin/chromium",
//         artifacts: "<dir for screenshots>", widths: [1000, 390],
//         pages: [{ name, url, buttons: ["Snooze +7 days", ...], status?: 200, dark?: true }],
//         flows: [{ name, email: "file://…", card: 0, click: "Snooze +7 days",
//                   confirm: "Confirm: snooze +7 days", reason: "…", expect_title: "Snoozed",
//                   then_revisit: true }] }
// Prints one JSON object: { checks: [{ name, width, ok, problems: [...] }], flows: [...] }.
// Exits 0 when it could run at all; the Rust test decides from the checks.
'use strict';
const fs = require('fs');
const path = require('path');

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { chromium } = require(plan.playwright);

// Layout problems of the page shown now: horizontal overflow, buttons that are hidden or need
// horizontal scrolling, text whose colour does not contrast with what is behind it.
async function layout(page, width, buttons, contrast) {
  return page.evaluate(({ width, buttons, contrast }) => {
    const problems = [];
    const doc = document.documentElement;
    const docWidth = Math.max(doc.scrollWidth, document.body ? document.body.scrollWidth : 0);
    if (docWidth > width) problems.push(`document is ${docWidth}px wide in a ${width}px viewport`);
    // Any element sticking out to the right (the cause, when the document overflows).
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > width + 0.5) {
        problems.push(`<${el.tagName.toLowerCase()}> "${(el.textContent || el.value || '').trim().slice(0, 40)}" ends at ${Math.round(r.right)}px`);
        break;
      }
    }
    const clickable = [...document.querySelectorAll('a, button')];
    for (const text of buttons) {
      const el = clickable.find((e) => e.textContent.trim() === text);
      if (!el) { problems.push(`no button "${text}"`); continue; }
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      if (r.width === 0 || r.height === 0 || style.visibility === 'hidden' || style.display === 'none') {
        problems.push(`button "${text}" is not visible`);
      } else if (r.left < 0 || r.right > width) {
        problems.push(`button "${text}" spans ${Math.round(r.left)}–${Math.round(r.right)}px: needs horizontal scrolling`);
      }
    }
    if (contrast) {
      const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
          const c = rgb(getComputedStyle(e).backgroundColor);
          if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
        }
        return [255, 255, 255];
      };
      for (const el of document.querySelectorAll('body *')) {
        const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
        if (!own) continue;
        const fg = rgb(getComputedStyle(el).color).slice(0, 3);
        const bg = background(el);
        const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
        const ratio = (a + 0.05) / (b + 0.05);
        if (ratio < 4.5) {
          problems.push(`text "${el.textContent.trim().slice(0, 30)}" has contrast ${ratio.toFixed(2)} (< 4.5)`);
          break;
        }
      }
    }
    return { problems, docWidth };
  }, { width, buttons, contrast });
}

async function shot(page, name, width) {
  const file = path.join(plan.artifacts, `${name}-${width}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

(async () => {
  const browser = await chromium.launch({
    executablePath: plan.chromium,
    args: ['--no-sandbox', '--disable-gpu'],
  });
  // Forced dark mode, as mail clients apply it to emails that do not style for dark: Blink's
  // auto-dark rendering. It works at paint time (computed styles do not change), so contrast is
  // checked in the light rendering and the forced-dark one is screenshotted for people.
  const darkBrowser = await chromium.launch({
    executablePath: plan.chromium,
    args: ['--no-sandbox', '--disable-gpu', '--blink-settings=forceDarkModeEnabled=true'],
  });
  const out = { checks: [], flows: [] };
  try {
    for (const p of plan.pages) {
      for (const width of plan.widths) {
        for (const scheme of p.dark ? ['light', 'dark'] : ['light']) {
          const context = await (scheme === 'dark' ? darkBrowser : browser).newContext({
            viewport: { width, height: 900 }, colorScheme: scheme, javaScriptEnabled: false,
          });
          const page = await context.newPage();
          const check = { name: p.name, width, scheme, ok: false, problems: [] };
          try {
            const resp = await page.goto(p.url);
            const status = resp ? resp.status() : 0;
            if (p.status !== undefined && status !== p.status) check.problems.push(`status ${status}, expected ${p.status}`);
            const l = await layout(page, width, p.buttons || [], !!p.contrast && scheme === 'light');
            check.problems.push(...l.problems);
            check.docWidth = l.docWidth;
            check.screenshot = await shot(page, scheme === 'dark' ? `${p.name}-dark` : p.name, width);
          } catch (e) {
            check.problems.push(`error: ${e.message}`);
          }
          check.ok = check.problems.length === 0;
          out.checks.push(check);
          await context.close();
        }
      }
    }
    for (const f of plan.flows) {
      const width = f.width || 390;
      const context = await browser.newContext({ viewport: { width, height: 900 } });
      const page = await context.newPage();
      const flow = { name: f.name, ok: false, problems: [], steps: [] };
      const step = async (name, buttons) => {
        const l = await layout(page, width, buttons, false);
        flow.steps.push({ name, title: await page.title(), url: page.url(), problems: l.problems });
        flow.problems.push(...l.problems.map((p) => `${name}: ${p}`));
        await shot(page, `${f.name}-${name}`, width);
      };
      try {
        await page.goto(f.email);
        await step('email', [f.click]);
        // The card's button: the n-th of that text (one per card).
        await Promise.all([
          page.waitForNavigation(),
          page.getByRole('link', { name: f.click, exact: true }).nth(f.card || 0).click(),
        ]);
        await step('confirm', [f.confirm]);
        if (f.reason !== undefined) await page.fill('#reason', f.reason);
        const [resp] = await Promise.all([
          page.waitForNavigation(),
          page.getByRole('button', { name: f.confirm, exact: true }).click(),
        ]);
        flow.status = resp ? resp.status() : 0;
        await step('done', []);
        flow.title = await page.title();
        flow.text = await page.evaluate(() => document.body.innerText);
        if (f.expect_title && flow.title !== f.expect_title) flow.problems.push(`title "${flow.title}", expected "${f.expect_title}"`);
        if (f.then_revisit) {
          // The same link again (and its sibling): refused, and the refusal page fits too.
          await page.goto(f.email);
          const [again] = await Promise.all([
            page.waitForNavigation(),
            page.getByRole('link', { name: f.click, exact: true }).nth(f.card || 0).click(),
          ]);
          flow.revisit_status = again ? again.status() : 0;
          await step('revisit', []);
          flow.revisit_text = await page.evaluate(() => document.body.innerText);
        }
      } catch (e) {
        flow.problems.push(`error: ${e.message}`);
      }
      flow.ok = flow.problems.length === 0;
      out.flows.push(flow);
      await context.close();
    }
  } finally {
    await browser.close();
    await darkBrowser.close();
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => {
  process.stderr.write(`check.js: ${e.stack || e}\n`);
  process.exit(3);
});
