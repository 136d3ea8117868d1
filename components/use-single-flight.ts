"use client";
/**
 * One call at a time from a button or form. `disabled={mutation.isPending}` reaches the page a
 * tick after the click, too late for a double-click's second click: the server then refuses the
 * second call ("busy taking snapshot…", "already forwarded", a name taken) while the first goes
 * through, and shows that refusal as if the action had failed; a second Acquire even hands out
 * a second VM.
 */
import { useRef } from "react";

/** `run(work)` starts `work` unless the last one it started is still under way. */
export function useSingleFlight(): (work: () => Promise<unknown>) => void {
  const running = useRef(false);
  return (work) => {
    if (running.current) return;
    running.current = true;
    const settle = () => {
      running.current = false;
    };
    // The mutation's own onError shows a failure; here it only ends the flight.
    work().then(settle, settle);
  };
}
