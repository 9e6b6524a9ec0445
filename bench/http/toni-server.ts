// toni as an application would use it: a module, a controller, ToniFactory.create.
import { Controller, Get, type HttpContext, Module, Post, ToniFactory } from 'tonijs';
import { type EchoRequest, GET_PATH, POST_PATH, announce, echo, greet } from './workload.js';

@Controller()
class BenchController {
  @Get(GET_PATH)
  hello() {
    return greet();
  }

  @Post(POST_PATH)
  echo(ctx: HttpContext<EchoRequest>) {
    return echo(ctx.body);
  }
}

@Module({ controllers: [BenchController] })
class AppModule {}

const app = await ToniFactory.create(AppModule, undefined, { logger: false });
const url = await app.listen(0, '127.0.0.1');
announce(Number(new URL(url).port));
