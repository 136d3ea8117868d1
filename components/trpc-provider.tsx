"use client";
/**
 * One QueryClient and one tRPC client per browser tab. Subscriptions (vm.onChange) go over
 * one WebSocket (a browser gives a host only six HTTP/1.1 connections, which six tabs of
 * event streams would hold for good), everything else over batched HTTP; both speak
 * superjson like the server.
 */
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createTRPCClient, createWSClient, httpBatchLink, splitLink, TRPCClientError, wsLink } from "@trpc/client";
import { useState, type ReactNode } from "react";
import superjson from "superjson";
import type { AppRouter } from "@/server/api/root.ts";
import { TRPCProvider } from "./trpc.ts";

const url = "/api/trpc";

/** The WebSocket of this page's origin; only opened in the browser, when a subscription starts. */
function webSocketUrl(): string {
  return `${window.location.protocol === "https:" ? "wss" : "ws"}://${window.location.host}/api/trpc-ws`;
}

/** Client errors (bad input, not found, conflicts) will not go away by asking again. */
function shouldRetry(failureCount: number, error: unknown): boolean {
  if (error instanceof TRPCClientError) {
    const status = (error.data as { httpStatus?: number } | undefined)?.httpStatus;
    if (status !== undefined && status < 500) return false;
  }
  return failureCount < 2;
}

function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { staleTime: 5_000, retry: shouldRetry },
      mutations: { retry: false },
    },
  });
}

export function TrpcProvider({ children }: { children: ReactNode }) {
  const [queryClient] = useState(makeQueryClient);
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
          false: httpBatchLink({ url, transformer: superjson }),
        }),
      ],
    }),
  );
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        {children}
      </TRPCProvider>
    </QueryClientProvider>
  );
}
