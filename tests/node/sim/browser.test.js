// A real browser (Debian's Chromium through playwright-core) signs a person in through the
// simulator's hosted login page and looks at the dashboard.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { chromium } = require('playwright-core');
const { startSim } = require('../../../sim');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

test('a person signs in through the hosted login page and lands on the app with a code; the dashboard counts it', { skip: !fs.existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}` }, async () => {
  const sim = await startSim({ people: 30 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  try {
    const page = await browser.newPage();
    const person = sim.people.find((p) => p.accounts.length === 1 && p.accounts[0].product === 'paste');
    await page.goto(sim.urls.login);
    await page.getByLabel('Email').fill(person.email);
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /Wrong email or password/);
    await page.getByLabel('Email').fill(person.email);
    await page.getByLabel('Password').fill(person.accounts[0].password);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(/\/app\/callback\?/);
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('state'), 'demo');
    assert.match(url.searchParams.get('code') || '', /^[0-9a-f]{32}$/);
    assert.equal(await page.locator('#code').innerText(), url.searchParams.get('code'));

    await page.goto(`${sim.tenant.url}/_sim`);
    await page.locator('[data-key="lazy_migrated"] b').filter({ hasText: '1' }).waitFor({ timeout: 5000 });
    const row = page.locator('tr[data-product="paste"]');
    await row.waitFor();
    assert.match(await row.innerText(), /bcrypt/);
    await page.screenshot({ path: require('path').join(require('os').tmpdir(), 'trickle-dashboard.png'), fullPage: true });
  } finally {
    await browser.close();
    await sim.close();
  }
});
