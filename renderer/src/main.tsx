import './zod-config.ts';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { useApp } from './store.ts';
import { connect } from './transport.ts';
import './styles.css';

const transport = connect(
  (e) => useApp.getState().onEvent(e),
  (conn) => useApp.setState({ conn }),
);
useApp.setState({ transport });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
