import { Controller, Get, HttpResponse, Injectable, Module, Post, ToniFactory, inject, type HttpContext } from 'toni';
import { NodeHttpAdapter } from 'toni/node';

@Injectable()
class AnnouncementLog {
  readonly #entries: string[] = [];
  add(message: string): void { this.#entries.push(message); }
  list(): readonly string[] { return this.#entries; }
}

@Controller('/events')
class EventsController {
  private readonly log = inject(AnnouncementLog);

  @Get('/')
  list() { return { announcements: this.log.list() }; }

  @Post('/announce')
  announce(ctx: HttpContext<{ message: string }>) {
    this.log.add(`[Announcement] ${ctx.body.message}`);
    return HttpResponse.ok().build();
  }
}

@Module({ controllers: [EventsController], providers: [AnnouncementLog] })
class AppModule {}

const app = await ToniFactory.create(AppModule, new NodeHttpAdapter());
app.enableShutdownHooks();
const url = await app.listen(Number(process.env['PORT'] ?? 3000), process.env['HOST'] ?? '127.0.0.1');
console.log(`toni example listening on ${url} — try: curl -X POST ${url}/events/announce -H 'content-type: application/json' -d '{"message":"hi"}'`);
