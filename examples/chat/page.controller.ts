import { readFileSync } from 'node:fs';
import { Controller, Get, HttpResponse } from 'tonijs';

// Read once at startup: the page is static, and a missing file should fail before serving.
const page = readFileSync(new URL('./page.html', import.meta.url), 'utf8');

/** Serves the chat page. */
@Controller()
export class PageController {
  @Get('/')
  index() {
    return HttpResponse.ok().header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-cache').text(page).build();
  }
}
