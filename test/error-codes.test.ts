import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { ERROR_CODES } from 'tonijs';

describe('error code catalogue', () => {
  it('documents every ToniError code with its cause and fix', async () => {
    const doc = await readFile(new URL('../docs/error-codes.md', import.meta.url), 'utf8');
    const sections = new Map(doc.split(/^## /m).slice(1).map((section) => [section.split('\n', 1)[0]!.trim(), section] as const));
    for (const code of Object.keys(ERROR_CODES)) {
      const section = sections.get(code);
      assert.ok(section !== undefined, `docs/error-codes.md has no section for ${code}`);
      assert.match(section, /\*\*Cause\*\*/, `${code} documents no cause`);
      assert.match(section, /\*\*Fix\*\*/, `${code} documents no fix`);
    }
    for (const documented of sections.keys()) {
      assert.ok(documented in ERROR_CODES, `docs/error-codes.md documents ${documented}, which toni does not raise`);
    }
  });
});
