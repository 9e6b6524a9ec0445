// toni with the pipeline on: a global guard (authentication), a global interceptor and enableCors.
import {
  Controller,
  type ExecutionContext,
  Get,
  type Guard,
  type HttpContext,
  HttpException,
  Injectable,
  type Interceptor,
  MetadataKey,
  Module,
  Post,
  ToniFactory,
} from 'tonijs';
import { type EchoRequest, GET_PATH, PIPELINE_ORIGIN, POST_PATH, announce, echo, greet, userFor } from './workload.js';

const USER = new MetadataKey<{ id: string }>('user');

@Injectable()
class AuthGuard implements Guard {
  canActivate(ctx: ExecutionContext) {
    const user = userFor(ctx.headers.get('authorization'));
    if (user === undefined) throw new HttpException(401, 'Sign in first');
    ctx.set(USER, user);
    return true;
  }
}

@Injectable()
class CountingInterceptor implements Interceptor {
  calls = 0;
  intercept(_ctx: ExecutionContext, next: () => Promise<unknown>) {
    this.calls++;
    return next();
  }
}

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

@Module({ controllers: [BenchController], providers: [AuthGuard, CountingInterceptor] })
class AppModule {}

const app = await ToniFactory.create(AppModule, undefined, { logger: false });
app.useGlobalGuards(AuthGuard);
app.useGlobalInterceptors(CountingInterceptor);
app.enableCors({ origin: [PIPELINE_ORIGIN] });
const url = await app.listen(0, '127.0.0.1');
announce(Number(new URL(url).port));
