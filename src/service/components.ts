/** The parts `hindsight run` can run; `--only` picks a subset. */
export const SERVICE_COMPONENTS = ['listener', 'project', 'verify'] as const;
export type ServiceComponent = (typeof SERVICE_COMPONENTS)[number];
