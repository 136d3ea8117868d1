"use client";
/**
 * One QueryClient and one tRPC client per browser tab. Subscriptions (vm.onChange) go over
 * one WebSocket (a browser gives a host only six HTTP/1.1 connections, which six tabs of
 * event streams would hold for good), everything else over batched HTTP; both speak
 * superjson like the server.
 */
import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createTRPCOptionsProxy } from "@trpc/tanstack-react-query";
import { createTRPCClient, createWSClient, httpBatchLink, splitLink, TRPCClientError, wsLink } from "@trpc/client";
import { createContext, useContext, useState, type ReactNode } from "react";
import superjson from "superjson";
import type { AppRouter } from "@/server/api/root.ts";
import { firstVmListQuery, MAX_BATCH_CALLS } from "@/lib/vocabulary.ts";
import { signInAgainIfUnauthorized } from "./session.tsx";
import { RenderedAt } from "./use-now.ts";
import { TRPCProvider, type RouterOutputs } from "./trpc.ts";
import { nextPageCursor } from "./vm-filter.ts";

const url = "/api/trpc";

/** The WebSocket of this page's origin; only opened in the browser, when a subscription starts. */
function webSocketUrl(): string {
  return `${window.location.protocol === "https:" ? "wss" : "ws"}://${window.location.host}/api/trpc-ws`;
}

export function httpStatus(error: unknown): number | undefined {
  return error instanceof TRPCClientError ? (error.data as { httpStatus?: number } | undefined)?.httpStatus : undefined;
}

/** Client errors (bad input, not found, conflicts) will not go away by asking again. */
function shouldRetry(failureCount: number, error: unknown): boolean {
  const status = httpStatus(error);
  if (status !== undefined && status < 500) return false;
  return failureCount < 2;
}

function makeQueryClient(): QueryClient {
  // An ended session would otherwise leave each page showing the API's "Sign in first" sentence.
  const onError = (error: unknown) => signInAgainIfUnauthorized(httpStatus(error));
  return new QueryClient({
    queryCache: new QueryCache({ onError }),
    mutationCache: new MutationCache({ onError }),
    defaultOptions: {
      queries: { staleTime: 5_000, retry: shouldRetry },
      mutations: { retry: false },
    },
  });
}

/**
 * `session`: the caller's account.me answer as the server read it for this page (superjson,
 * URI-encoded), put in the cache so that the page asks for its data at once, not after
 * asking who is signed in. `list`: on the inventory page, the first page of the list the
 * table starts on (firstVmListQuery), read with the page, so its rows show without asking,
 * and the point the tab's live stream starts from: it is sent what changed since that read
 * instead of reading the lists again.
 */
export function TrpcProvider({ children, session, list }: { children: ReactNode; session?: string; list?: string }) {
  const [trpcClient] = useState(() =>
    createTRPCClient<AppRouter>({
      links: [
        splitLink({
          condition: (op) => op.type === "subscription",
          true: wsLink({
            client: createWSClient({
              url: webSocketUrl,
              lazy: { enabled: true, closeMs: 10_000 },
              retryDelayMs: (attempt) => Math.min(500 * 2 ** attempt, 10_000),
            }),
            transformer: superjson,
          }),
          false: httpBatchLink({ url, transformer: superjson, maxItems: MAX_BATCH_CALLS }),
        }),
      ],
    }),
  );
  const [{ queryClient, resumeFrom, readAt }] = useState(() => {
    const client = makeQueryClient();
    if (!session) return { queryClient: client };
    const trpc = createTRPCOptionsProxy<AppRouter>({ client: trpcClient, queryClient: client });
    const me = superjson.parse<RouterOutputs["account"]["me"]>(decodeURIComponent(session));
    client.setQueryData(trpc.account.me.queryKey(), me);
    if (!list || !me.user) return { queryClient: client };
    const seed = superjson.parse<{ resumeFrom: string; readAt: number; page: RouterOutputs["vm"]["list"] }>(decodeURIComponent(list));
    const first = trpc.vm.list.infiniteQueryOptions(firstVmListQuery(me.user.role), { getNextPageParam: nextPageCursor });
    client.setQueryData(first.queryKey, { pages: [seed.page], pageParams: [first.initialPageParam] });
    return { queryClient: client, resumeFrom: seed.resumeFrom, readAt: seed.readAt };
  });
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        <SeedResumePoint.Provider value={resumeFrom}>
          <RenderedAt.Provider value={readAt}>{children}</RenderedAt.Provider>
        </SeedResumePoint.Provider>
      </TRPCProvider>
    </QueryClientProvider>
  );
}

const SeedResumePoint = createContext<string | undefined>(undefined);

/** Where the tab's live stream starts when the page came with lists read by the server; undefined otherwise. */
export function useSeedResumePoint(): string | undefined {
  return useContext(SeedResumePoint);
}
