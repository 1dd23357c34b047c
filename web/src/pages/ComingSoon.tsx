import { PageHeader } from '../components/Layout';

interface Props {
  title: string;
  description: string;
}

export function ComingSoon({ title, description }: Props) {
  return (
    <>
      <PageHeader title={title} />
      <section className="card coming-soon">
        <span className="badge badge-soon">Coming soon</span>
        <p>{description}</p>
      </section>
    </>
  );
}

export const PLACEHOLDERS: Record<string, Props> = {
  '/workflows': {
    title: 'Workflows',
    description: 'Design visual workflows and run agents and crews of agents that work through tasks for you.',
  },
  '/data': {
    title: 'Data',
    description: 'Ask your data in plain language, over your databases and spreadsheets.',
  },
};
